"""The ``measured`` stage: a short validation replay on the CPU engine, through the harness's
Python API (launcher, plan, replay, metrics, predict), for ``make report``'s TTFT section.

simkv never imports the harness, so this stage registers itself when pyproject's
``simkv.stages`` entry point loads this module (``simkv.pipeline.plugins``).  It starts vLLM
(CPU build, a tiny random-weight model, a KV cache small enough to evict), replays a
calibration workload (seed 12) and fits the latency model to it, replays the validation
workload (seed 11, the spec in ``workloads/engine/engine-validation.yaml``) one request at a
time, and writes predicted vs measured prefix hit rate and TTFT to ``validate.json``.  A run
that produced no results is not cached (the next ``make report`` tries again).

:func:`replay` and :func:`compare` are the vLLM-only part of ``simkv-harness validate`` written
against the harness's lower-level modules (``harness/cli.py`` is being split into a
``validate`` API; once it exists, these two should call it instead).
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from pathlib import Path

import pandas as pd
import yaml

from harness.launcher import REPO_ROOT, EngineError, EngineStack, ServeOptions, find_engine_python
from harness.metrics import VLLM_REQUIRED, MetricsError, Snapshot, cache_deltas, cache_info
from harness.plan import PlanOptions, build_plan
from harness.predict import EngineCacheSpec, combine, predict
from harness.replay import ClientOptions, ServerDied, replay_async, summarize
from simkv.atomicio import atomic_write_text, sha256_file
from simkv.errors import InputError
from simkv.pipeline.stage import Stage, StageOutput, register_stage

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


def _get(url: str, *, method: str = "GET", timeout_s: float = 10.0) -> str:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - local server
        return resp.read().decode("utf-8", "replace")


def _scrape(endpoint: str) -> Snapshot:
    try:
        return Snapshot.parse(_get(f"{endpoint}/metrics"))
    except OSError as exc:
        raise MetricsError(f"cannot scrape {endpoint}/metrics: {exc}") from None


def _warm_and_reset(endpoint: str, model: str, salt: int) -> None:
    """One throwaway request (its own tokens), then an empty prefix cache (dev mode is on)."""
    body = json.dumps({"model": model, "prompt": [3 + (salt * 7919 + k) % 4000 for k in range(300)],
                       "max_tokens": 2, "ignore_eos": True}).encode()
    req = urllib.request.Request(f"{endpoint}/v1/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=600).read()  # noqa: S310 - local server
    _get(f"{endpoint}/reset_prefix_cache?reset_external=true", method="POST")


def replay(trace, endpoint: str, out_dir: Path, *, salt: int) -> dict:
    """Replay ``trace`` one request at a time; records, plan and metric scrapes around it."""
    served = json.loads(_get(f"{endpoint}/v1/models"))["data"][0]
    model = str(served["id"])
    plan = build_plan(trace, PlanOptions(endpoints=(endpoint,), time_scale=0.0,
                                         max_requests=VALIDATION_REQUESTS,
                                         max_model_len=served.get("max_model_len"), salt=salt))
    _warm_and_reset(endpoint, model, salt + 1_000_003)
    before = _scrape(endpoint)
    before.require(VLLM_REQUIRED, endpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(replay_async(plan, out_dir / "records.jsonl", ClientOptions(model=model)))
    except ServerDied as exc:
        raise EngineError(f"replay stopped: {exc}") from None
    after = _scrape(endpoint)
    from harness.replay import read_records

    df = pd.DataFrame(read_records(out_dir / "records.jsonl"))
    if len(df):
        df = df.sort_values("request", kind="stable").reset_index(drop=True)
        df.to_parquet(out_dir / "records.parquet", index=False)
    return {"plan": plan, "df": df, "before": before, "after": after}


def compare(rep: dict, calibration: Path | None) -> dict:
    """Measured (metric deltas) beside predicted (simkv's vLLM policy on the sent tokens)."""
    info = cache_info(rep["after"])
    records = rep["df"].to_dict("records") if len(rep["df"]) else []
    ok = {int(r["request"]) for r in records if r["status"] == "ok"}
    pred = combine(predict(rep["plan"], ok, EngineCacheSpec(info.block_size, info.usable_blocks)))
    d = cache_deltas(rep["before"], rep["after"])
    q, h = d["prefix_cache_queries_tokens"], d["prefix_cache_hits_tokens"]
    s = summarize(records)
    out = {"requests_sent": len(ok), "block_tokens": info.block_size,
           "cache_blocks": info.num_gpu_blocks, "measured_prefix_queries_tokens": q,
           "predicted_prefix_queries_tokens": pred["prompt_tokens"],
           "measured_prefix_hit_ratio": h / q if q else None,
           "predicted_prefix_hit_ratio": pred["prefix_hit_ratio"],
           "measured_ttft_p50_s": s["ttft_p50_s"], "measured_ttft_p90_s": s["ttft_p90_s"],
           "measured_ttft_p99_s": s["ttft_p99_s"], "predicted_ttft_p50_s": None,
           "predicted_ttft_p90_s": None, "replay": s}
    if calibration is not None:
        from simkv.cache import CacheConfig
        from simkv.latency.calibrate import evaluate_prediction

        ev = evaluate_prediction(_engine_trace(rep["plan"], info.block_size),
                                 CacheConfig(capacity_blocks=info.usable_blocks, policy="vllm"),
                                 rep["df"], calibration)
        out.update({"predicted_ttft_p50_s": ev["predicted_p50_s"],
                    "predicted_ttft_p90_s": ev["predicted_p90_s"], "ttft_evaluation": ev})
    return out


def _engine_trace(plan, block_tokens: int):
    """The sent requests as a Trace at the engine's block size (trace request ids kept)."""
    import numpy as np

    from harness.prompts import chained_keys, key_to_u64
    from simkv.trace.model import Trace

    reqs = sorted(plan, key=lambda r: r.request)
    hashes, offs = [], [0]
    for r in reqs:
        keys = [] if r.skip_reason else chained_keys(np.asarray(r.prompt), block_tokens)
        hashes.extend(key_to_u64(k) for k in keys)
        offs.append(len(hashes))
    return Trace.from_arrays(
        block_tokens=block_tokens,
        arrival_s=np.maximum.accumulate(np.asarray([r.scheduled_s for r in reqs])),
        input_tokens=[0 if r.skip_reason else len(r.prompt) for r in reqs],
        output_tokens=[r.max_tokens for r in reqs], block_offsets=offs,
        block_hashes=np.asarray(hashes, dtype=np.uint64))


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


def measure(out_dir: Path, engine_python: Path) -> dict:
    """Start the engine, run both replays, stop it; the validation result."""
    opts = ServeOptions(model_config=ENGINE_MODEL, port=_free_port(),
                        kv_cache_bytes=ENGINE_KV_CACHE_BYTES, engine_python=str(engine_python),
                        startup_timeout_s=SERVE_READY_TIMEOUT_S)
    with EngineStack(opts) as stack:
        # 1. calibration replay (its own token salt, so no prompt collides with step 2)
        cal = replay(validation_trace(CALIBRATION_SEED), stack.endpoint, out_dir / "calibration",
                     salt=1)
        fit = None
        if len(cal["df"]):
            fit = calibrate(out_dir / "calibration" / "records.parquet", out_dir / "calibration.yaml")
        # 2. validation replay, predicted with the calibrated latency model
        val = replay(validation_trace(), stack.endpoint, out_dir / "replay", salt=2)
    result = compare(val, out_dir / "calibration.yaml" if fit else None)
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
