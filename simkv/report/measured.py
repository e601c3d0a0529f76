"""The measured part of ``make report``: a short validation replay on the CPU engine.

simkv never imports the harness (the harness may import simkv, not the other way round), so
the replay runs as subprocesses: ``simkv-harness serve`` starts vLLM (CPU build, a tiny
random-weight model, a KV cache small enough to evict) and ``simkv-harness validate --json``
replays a small generated workload one request at a time and writes predicted vs measured
prefix hit rate and TTFT, which the TTFT section reads.  With ``--quick`` nothing runs and the
report says how to run it.  The workload's prompts stay under the engine's 4,096-token limit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: the engine's own virtual environment (``make engine``), relative to the checkout we run in
ENGINE_PYTHON = Path(".venv-engine/bin/python")


def engine_python() -> Path:
    """The engine interpreter as an absolute path (not resolved: that would leave the venv)."""
    return ENGINE_PYTHON.absolute()
ENGINE_MODEL = "tiny-llama-2l"
ENGINE_KV_CACHE = "8MiB"
VALIDATION_REQUESTS = 120
SERVE_READY_TIMEOUT_S = 420.0

#: the replayed workload: shared system prompts (Zipf), multi-turn sessions with a 2-turn
#: history window, prompts of a few hundred to ~3,000 tokens (a simkv.workloads spec).
VALIDATION_SPEC = {
    "name": "engine-validation",
    "description": "Shared system prompts and short multi-turn sessions, sized for vLLM on a CPU.",
    "duration": "2h", "seed": 11, "block_tokens": 64,
    "arrivals": {"rate_per_day": 20000},
    "sessions": {"turns": {"dist": "geometric", "mean": 3, "max": 6},
                 "think_time_s": {"dist": "exponential", "mean": 20}},
    "system": {"templates": 4, "zipf": 1.0,
               "tokens": {"dist": "choice", "values": [512, 1024, 1536]}},
    "user": {"tokens": {"dist": "lognormal", "median": 80, "sigma": 0.6, "min": 1, "max": 400}},
    "output": {"tokens": 4},
    "history": {"mode": "window", "window_turns": 2},
    "models": [{"name": ENGINE_MODEL}],
}


@dataclass(frozen=True)
class MeasuredRun:
    """Outcome of the replay step: the results file, or why there is none."""

    results: Path | None
    reason: str = ""


def harness_executable() -> str | None:
    here = Path(sys.executable).parent / "simkv-harness"
    return str(here) if here.exists() else shutil.which("simkv-harness")


#: seeds of the two replays: the first calibrates the latency model, the second is predicted
CALIBRATION_SEED, VALIDATION_SEED = 12, 11


def validation_trace(seed: int = VALIDATION_SEED):
    """The replayed workload (the calibration replay uses the same spec with another seed)."""
    from simkv.workloads import generate, spec_from_dict

    spec = spec_from_dict({**VALIDATION_SPEC, "seed": seed},
                          source="simkv.report.measured.VALIDATION_SPEC")
    return generate(spec).head(VALIDATION_REQUESTS)


def calibrate(records: Path, out: Path) -> dict:
    """Fit the latency model to the calibration replay's records (``simkv calibrate``)."""
    from simkv.latency.calibrate import fit_calibration, load_measured

    calib = fit_calibration(load_measured(records), holdout=0.25, seed=0, source=records.name)
    out.write_text(calib.to_yaml())
    fit = calib.fit
    return {"records_fit": fit.records_fit, "records_evaluated": fit.records_evaluated,
            "mape": fit.mape, "p50_abs_rel_error": fit.p50_abs_rel_error,
            "p90_abs_rel_error": fit.p90_abs_rel_error}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2.0) as resp:  # noqa: S310 - local server
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(2.0)
    return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the serve process we started (it stops vLLM itself), SIGKILL its group if stuck."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def run_validation(out_dir: Path, *, timeout_s: float = 900.0) -> MeasuredRun:
    """Start the CPU engine, replay the validation workload, stop the engine."""
    exe = harness_executable()
    if exe is None:
        return MeasuredRun(None, "simkv-harness is not installed in this environment")
    if not engine_python().exists():
        return MeasuredRun(None, f"the engine environment {ENGINE_PYTHON} does not exist "
                                 "(`make engine` creates it)")
    from simkv.trace import save_trace

    out_dir.mkdir(parents=True, exist_ok=True)
    trace_path = out_dir / "engine-validation.parquet"
    cal_path = out_dir / "engine-calibration.parquet"
    save_trace(validation_trace(), trace_path)
    save_trace(validation_trace(CALIBRATION_SEED), cal_path)
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(out_dir / "serve.log", "w") as serve_log:
        proc = subprocess.Popen([exe, "serve", "--model-config", ENGINE_MODEL, "--kv-cache-bytes",
                                 ENGINE_KV_CACHE, "--port", str(port), "--engine-python",
                                 str(engine_python())], stdout=serve_log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            if not _wait_ready(f"{endpoint}/v1/models", proc, SERVE_READY_TIMEOUT_S):
                return MeasuredRun(None, f"the CPU engine did not start (see {out_dir / 'serve.log'})")
            # 1. calibration replay (its own token salt, so no prompt collides with step 2)
            with open(out_dir / "calibration.log", "w") as log:
                cal = subprocess.run([exe, "replay", "--trace", str(cal_path), "--endpoint", endpoint,
                                      "--concurrency", "1", "--time-scale", "0", "--salt", "1",
                                      "--out", str(out_dir / "calibration"), "--force"],
                                     stdout=log, stderr=subprocess.STDOUT, text=True,
                                     timeout=timeout_s, check=False)
            calib_args: list[str] = []
            fit = None
            if cal.returncode == 0:
                fit = calibrate(out_dir / "calibration" / "records.parquet",
                                out_dir / "calibration.yaml")
                calib_args = ["--calibration", str(out_dir / "calibration.yaml")]
            # 2. validation replay, predicted with the calibrated latency model
            with open(out_dir / "validate.log", "w") as log:
                res = subprocess.run([exe, "validate", "--trace", str(trace_path), "--endpoint",
                                      endpoint, "--concurrency", "1", "--max-requests",
                                      str(VALIDATION_REQUESTS), "--salt", "2",
                                      "--out", str(out_dir / "replay"), "--force", "--json",
                                      *calib_args],
                                     stdout=subprocess.PIPE, stderr=log, text=True,
                                     timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return MeasuredRun(None, f"the validation replay took longer than {timeout_s:g} s")
        finally:
            _stop(proc)
    if res.returncode != 0:
        return MeasuredRun(None, f"`simkv-harness validate` exited with status {res.returncode} "
                                 f"(see {out_dir / 'validate.log'})")
    result = json.loads(res.stdout)
    result["label"] = f"engine-validation on vLLM CPU ({ENGINE_MODEL}, KV {ENGINE_KV_CACHE})"
    result["calibration_fit"] = fit
    result["calibration_note"] = (
        "TTFT predicted with the latency model calibrated on a separate replay (seed "
        f"{CALIBRATION_SEED}) on the same engine" if fit else
        f"calibration replay failed (see {out_dir / 'calibration.log'}): no predicted TTFT")
    path = out_dir / "validate.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return MeasuredRun(path)
