"""Predicted vs measured TTFT of a trace replayed one request at a time (the committed
records' benchmark, ``tests/bench/test_bench_calibration.py``): cache hits from simulating the
engine's cache over the trace, TTFT from a calibration (:mod:`simkv.latency.calibrate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simkv.cache.config import CacheConfig
from simkv.errors import InputError
from simkv.latency.calibrate import (
    Calibration,
    check_measured,
    load_calibration,
    predict_ttft,
    relative_errors,
    split_tokens,
    usable_mask,
)
from simkv.trace.model import Trace


def _as_calibration(calibration: Calibration | Path | str) -> Calibration:
    return calibration if isinstance(calibration, Calibration) else load_calibration(Path(calibration))


def evaluate_prediction(trace: Trace, cfg: CacheConfig, measured_df: pd.DataFrame,
                        calibration: Calibration | Path | str, *, model: str | None = None,
                        skip_first: int = 0) -> dict[str, Any]:
    """Predicted vs measured TTFT for a trace replayed one request at a time.

    Cache hits come from simulating ``cfg`` over the whole trace (the engine's cache as simkv
    models it); TTFT from the calibrated model.  Only requests measured without error count,
    after dropping the first ``skip_first`` requests (warm-up).  Also reports the prediction
    made with the engine's own measured ``cached_tokens``, separating the cache model's error
    from the timing model's.  Every figure is computed here from the inputs.
    """
    from simkv.cache.engine import simulate

    calib = _as_calibration(calibration)
    coef = calib.coefficients()
    df = check_measured(measured_df)
    ok = df.loc[usable_mask(df, need_cached=False)].reset_index(drop=True)
    req = ok["request"].to_numpy(dtype=np.int64)
    if np.any((req < 0) | (req >= trace.n_requests)):
        raise InputError("a measured request index lies outside the trace", where="column request")
    keep = req >= skip_first
    ok, req = ok.loc[keep].reset_index(drop=True), req[keep]
    if not len(ok):
        raise InputError("no usable measured records to compare with")
    sim = simulate(trace, cfg, model=model)
    sim_cached = sim.records["reused_tokens"].to_numpy()[req]
    inp = trace.input_tokens[req]
    predicted = predict_ttft(coef, *split_tokens(inp, sim_cached))
    measured = ok["ttft_s"].to_numpy(dtype=np.float64)
    rel = relative_errors(predicted, measured)
    known = ok["cached_tokens"].notna().to_numpy()
    engine_cached = ok["cached_tokens"].to_numpy(dtype=np.float64)[known]
    engine_prompt = ok["prompt_tokens"].to_numpy(dtype=np.float64)[known]
    e50 = float(np.percentile(predict_ttft(coef, *split_tokens(engine_prompt, engine_cached)), 50)) \
        if known.any() else None
    m50, m90 = np.percentile(measured, [50, 90])
    p50, p90 = np.percentile(predicted, [50, 90])
    return {
        "requests": int(len(ok)),
        "measured_p50_s": float(m50), "predicted_p50_s": float(p50),
        "p50_rel_error": float(abs(p50 - m50) / m50),
        "measured_p90_s": float(m90), "predicted_p90_s": float(p90),
        "p90_rel_error": float(abs(p90 - m90) / m90),
        "mape": float(rel.mean()), "median_abs_rel_error": float(np.median(rel)),
        "predicted_p50_s_engine_hits": e50,
        "p50_rel_error_engine_hits": None if e50 is None else float(abs(e50 - m50) / m50),
        "simulated_cached_share": float(sim_cached.sum() / max(inp.sum(), 1)),
        "engine_cached_share": float(engine_cached.sum() / max(engine_prompt.sum(), 1))
        if known.any() else None,
        "within_15pct": bool(abs(p50 - m50) / m50 <= 0.15),
    }


__all__ = ["evaluate_prediction"]
