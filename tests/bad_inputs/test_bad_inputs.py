"""Run the bad-input corpus (cases.yaml): exit 2, one line naming file and line/field, no
traceback, nothing written or overwritten (checksums of every file before and after).

Cases run in-process through the CLI's entry point (:func:`simkv.cli.main.run`), the path
``python -m simkv`` takes, so the corpus costs seconds, not a fresh interpreter per case.
Each case gets a scratch copy of files/ and a memory bound of 4 GiB unless it gives its own.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

import harness.cli as harness_cli
from simkv.cli.main import build_app, run

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "cases.yaml").read_text())
KINDS = {"numbers", "parsers", "outputs", "resources", "harness", "inputs"}


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_corpus_is_large_enough():
    assert len(CASES) >= 150
    assert len({c["name"] for c in CASES}) == len(CASES)


def _leading_words(args: list[str]) -> list[str]:
    words = []
    for a in args:
        if a.startswith(("-", "{")):
            break
        words.append(a)
    return words


def test_corpus_covers_every_kind_and_command():
    """Every kind of issue 14 has cases, and so does every command the fuzzer knows (its
    BASELINES; test_cli_fuzz checks that every command of both CLIs is there)."""
    from tests.unit.test_cli_fuzz import BASELINES

    assert {c["kind"] for c in CASES if "kind" in c} >= KINDS
    for path in BASELINES:
        prog, words = path.split()[0], path.split()[1:]
        assert any(c.get("prog", "simkv") == prog
                   and _leading_words(c["args"])[:len(words)] == words for c in CASES), path


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys):
    files = tmp_path / "files"
    shutil.copytree(HERE / "files", files)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIMKV_MAX_MEMORY", "4GiB")
    monkeypatch.delenv("SIMKV_API_KEY", raising=False)
    for key, value in (case.get("env") or {}).items():
        monkeypatch.setenv(key, value)
    before = _snapshot(tmp_path)
    args = [a.replace("{f}", str(files)).replace("{tmp}", str(tmp_path)) for a in case["args"]]
    prog = case.get("prog", "simkv")
    app = build_app() if prog == "simkv" else harness_cli.app
    try:
        rc = run(app, args, prog=prog)
    except SystemExit as exc:
        rc = exc.code
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert case["expect"] in lines[0], lines[0]
    assert _snapshot(tmp_path) == before, "the command wrote or changed files"


def _limit_file_size() -> None:
    """A disk that fills up: writes beyond 64 kB fail with EFBIG (Python ignores SIGXFSZ)."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.parametrize("args", [
    ["trace", "convert", "{big}", "{out}", "--to", "mooncake", "--force"],
    ["workload", "generate", "brief-system-prefix", "--out", "{out}", "--format", "mooncake",
     "--block-tokens", "512", "--force"],
], ids=["trace convert", "workload generate"])
def test_a_write_that_fails_half_way_keeps_the_old_file(args, tmp_path):
    """The output exists (a user's earlier result); the new one is larger than the disk
    allows: exit 2, one line naming the file, and the old file byte for byte as it was."""
    import subprocess
    import sys

    big = tmp_path / "big.jsonl"
    shutil.copy(HERE.parents[1] / "tests" / "data" / "mooncake_synthetic.jsonl", big)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"an earlier result\n")
    argv = [a.replace("{big}", str(big)).replace("{out}", str(out)) for a in args]
    proc = subprocess.run([sys.executable, "-m", "simkv", *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300, preexec_fn=_limit_file_size)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "out.jsonl: write failed" in lines[0], lines[0]
    assert out.read_bytes() == b"an earlier result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl", "out.jsonl"]  # no temp left
