"""The measured part of ``make report``: a short validation replay on the CPU engine.

simkv never imports the harness (it may import simkv, not the other way round), so the replay
runs as a subprocess: ``simkv-harness validate ... --json``, whose JSON result (predicted vs
measured prefix hit rate and TTFT) the TTFT section reads.  With ``--quick`` nothing runs and
the report says how to run it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: the workload replayed on the engine and how many of its requests (one at a time)
VALIDATION_WORKLOAD = "support-assistant"
VALIDATION_REQUESTS = 120
ENGINE_PYTHON = Path(".venv-engine/bin/python")


@dataclass(frozen=True)
class MeasuredRun:
    """Outcome of the replay step: the results file, or why there is none."""

    results: Path | None
    reason: str = ""
    log: Path | None = None


def harness_executable() -> str | None:
    here = Path(sys.executable).parent / "simkv-harness"
    return str(here) if here.exists() else shutil.which("simkv-harness")


def run_validation(trace_path: Path, out_dir: Path, *, timeout_s: float = 900.0) -> MeasuredRun:
    """Replay ``trace_path`` on a local CPU vLLM through ``simkv-harness validate``."""
    exe = harness_executable()
    if exe is None:
        return MeasuredRun(None, "simkv-harness is not installed in this environment")
    if not ENGINE_PYTHON.exists():
        return MeasuredRun(None, f"the engine environment {ENGINE_PYTHON} does not exist "
                                 "(`make engine` creates it)")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / "validate.json"
    log = out_dir / "validate.log"
    cmd = [exe, "validate", "--trace", str(trace_path), "--launch", "--engine-python",
           str(ENGINE_PYTHON), "--max-requests", str(VALIDATION_REQUESTS), "--concurrency", "1",
           "--out", str(out_dir / "replay"), "--json"]
    try:
        with open(log, "w") as fh:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True,
                                  timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return MeasuredRun(None, f"the validation replay took longer than {timeout_s:g} s", log)
    if proc.returncode != 0:
        return MeasuredRun(None, f"`simkv-harness validate` exited with status {proc.returncode} "
                                 f"(see {log})", log)
    results.write_text(proc.stdout)
    return MeasuredRun(results, "", log)
