"""The ``measured`` stage: a short validation replay on the CPU engine, through the harness's
Python API (``launcher``, ``measure``, ``validate``), for ``make report``'s TTFT section.

simkv never imports the harness, so this stage registers itself when pyproject's
``simkv.stages`` entry point loads this module (``simkv.pipeline.plugins``).  It starts vLLM
(CPU build, a tiny random-weight model, a KV cache small enough to evict), replays a
calibration workload (seed 12) and fits the latency model to it, replays the validation
workload (seed 11, the spec in ``workloads/engine/engine-validation.yaml``) one request at a
time, and writes predicted vs measured prefix hit rate and TTFT to ``validate.json``.  A run
that produced no results is not cached (the next ``make report`` tries again).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import yaml

from harness.launcher import REPO_ROOT, EngineError, EngineStack, ServeOptions, find_engine_python
from harness.metrics import MetricsError
from simkv.atomicio import atomic_write_text, sha256_file
from simkv.errors import InputError
from simkv.pipeline.stage import Stage, StageOutput, register_stage

# harness.measure / harness.validate and simkv.trace are imported where they are used: loading
# this plug-in (every make report) then costs no simulator import when the stage is reused

SPEC_PATH = REPO_ROOT / "workloads" / "engine" / "engine-validation.yaml"
ENGINE_MODEL = "tiny-llama-2l"
ENGINE_KV_CACHE_BYTES = 8 * 1024 * 1024
VALIDATION_REQUESTS = 120
#: seeds of the two replays: the first calibrates the latency model, the second is predicted
CALIBRATION_SEED, VALIDATION_SEED = 12, 11
SERVE_READY_TIMEOUT_S = 420.0


def validation_trace(seed: int = VALIDATION_SEED):
    """The replayed workload (the calibration replay uses the same spec with another seed)."""
    from simkv.workloads import generate, spec_from_dict

    body = yaml.safe_load(SPEC_PATH.read_text())
    spec = spec_from_dict({**body, "seed": seed}, source=str(SPEC_PATH.relative_to(REPO_ROOT)))
    return generate(spec).head(VALIDATION_REQUESTS)


def calibrate(records: Path, out: Path) -> dict:
    """Fit the latency model to the calibration replay's records (``simkv calibrate``)."""
    from simkv.latency.calibrate import fit_calibration, load_measured

    calib = fit_calibration(load_measured(records), holdout=0.25, seed=0, source=records.name)
    atomic_write_text(out, calib.to_yaml())
    fit = calib.fit
    return {"records_fit": fit.records_fit, "records_evaluated": fit.records_evaluated,
            "mape": fit.mape, "p50_abs_rel_error": fit.p50_abs_rel_error,
            "p90_abs_rel_error": fit.p90_abs_rel_error}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replay_options(endpoint: str, out: Path, salt: int):
    """One request at a time, back to back, a fresh token salt per replay (no prompt of one
    replay collides with the other's)."""
    from harness.measure import ReplayOptions

    return ReplayOptions(endpoints=(endpoint,), out=out, time_scale=0.0, concurrency=1,
                         max_requests=VALIDATION_REQUESTS, salt=salt, force=True,
                         require_metrics=True)


def calibration_replay(endpoint: str, out_dir: Path) -> dict | None:
    """Replay the calibration workload (seed 12) and fit the latency model to its records."""
    from harness.measure import replay_and_measure
    from simkv.trace import save_trace

    trace_path = out_dir / "engine-calibration.parquet"
    save_trace(validation_trace(CALIBRATION_SEED), trace_path)
    m = replay_and_measure(trace_path, _replay_options(endpoint, out_dir / "calibration", 1),
                           say=lambda _msg: None)
    if not m.records:
        return None
    return calibrate(out_dir / "calibration" / "records.parquet", out_dir / "calibration.yaml")


def validation_replay(endpoint: str, out_dir: Path, calibration: Path | None, trace=None) -> dict:
    """Replay the validation workload (seed 11, or ``trace``) through the harness's
    ``validate`` API: measured beside predicted hit rate (and TTFT with a calibration)."""
    from harness.validate import ValidateOptions, validate
    from simkv.trace import save_trace

    trace_path = out_dir / "engine-validation.parquet"
    save_trace(validation_trace() if trace is None else trace, trace_path)
    opts = ValidateOptions(replay=_replay_options(endpoint, out_dir / "replay", 2),
                           calibration=calibration, model_config=ENGINE_MODEL)
    return validate(trace_path, opts).as_dict()


def measure(out_dir: Path, engine_python: Path) -> dict:
    """Start the engine, run both replays, stop it; the validation result."""
    opts = ServeOptions(model_config=ENGINE_MODEL, port=_free_port(),
                        kv_cache_bytes=ENGINE_KV_CACHE_BYTES, engine_python=str(engine_python),
                        startup_timeout_s=SERVE_READY_TIMEOUT_S)
    with EngineStack(opts) as stack:
        fit = calibration_replay(stack.endpoint, out_dir)
        result = validation_replay(stack.endpoint, out_dir,
                                   out_dir / "calibration.yaml" if fit else None)
    result["label"] = (f"engine-validation on vLLM CPU ({ENGINE_MODEL}, KV "
                       f"{ENGINE_KV_CACHE_BYTES // 2**20}MiB)")
    result["calibration_fit"] = fit
    result["calibration_note"] = (
        "TTFT predicted with the latency model calibrated on a separate replay (seed "
        f"{CALIBRATION_SEED}) on the same engine" if fit else
        "calibration replay returned no records: no predicted TTFT")
    return result


def run(ctx) -> StageOutput:
    """The stage: ``validate.json`` and the engine's versions, or why there is none."""
    from simkv.report.provenance import engine_versions

    try:
        engine_python = find_engine_python(None)
    except InputError:
        return StageOutput(facts={"results": None, "engine": {}, "reason": (
            "the engine environment .venv-engine does not exist (`make engine` creates it)")},
            cacheable=False)
    try:
        result = measure(ctx.out_dir, engine_python.absolute())
    except (EngineError, MetricsError, OSError, ValueError, KeyError) as exc:
        # a server that died, missing metrics, a refused connection, a malformed answer
        # (InputError is a ValueError): the report says why and the next run tries again
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StageOutput(facts={"results": None, "reason": reason, "engine": {}}, cacheable=False)
    atomic_write_text(ctx.out_dir / "validate.json",
                      json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return StageOutput(facts={"results": "validate.json", "reason": "",
                              "engine": engine_versions(engine_python.absolute())})


def _digests(_options) -> dict[str, str]:
    """The spec replayed and the engine environment (its pyvenv.cfg names its Python)."""
    cfg = REPO_ROOT / ".venv-engine" / "pyvenv.cfg"
    stamp = REPO_ROOT / ".venv-engine" / ".installed"
    return {"validation_spec": sha256_file(SPEC_PATH),
            "engine_env": (sha256_file(cfg) if cfg.is_file() else "absent") + ":"
                          + ("installed" if stamp.exists() else "not installed")}


register_stage(Stage("measured", "validation replay on the CPU engine", run,
                     enabled=lambda o: bool(o.run_engine) and o.measured_path is None,
                     digests=_digests, code_roots=("simkv", "harness")))
