"""Run the bad-input corpus (cases.yaml): exit 2, one line naming file and line/field, no
traceback, nothing written or overwritten."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "cases.yaml").read_text())


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input(case, tmp_path):
    files = tmp_path / "files"
    shutil.copytree(HERE / "files", files)
    before = _snapshot(tmp_path)
    args = [a.replace("{f}", str(files)).replace("{tmp}", str(tmp_path)) for a in case["args"]]
    module = {"simkv": "simkv", "simkv-harness": "harness.cli"}[case.get("prog", "simkv")]
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert case["expect"] in lines[0], lines[0]
    assert _snapshot(tmp_path) == before, "the command wrote or changed files"
