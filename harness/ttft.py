"""Predicted TTFT of the sent requests: calibrated costs through the serving simulation.

Each request's cache hits come from :mod:`harness.predict` (vLLM-local and LMCache-loaded
tokens); the calibrated linear model prices them (:func:`simkv.latency.costs.request_costs`,
decode from the calibration's measured step); :func:`simkv.latency.serving.simulate_serving`
runs the engine's steps per endpoint at the replay's planned send times, with vLLM's token
budget and the client's cap on requests in flight as the slot limit.  The client's TTFT starts
when it sends, i.e. when a slot frees, so the slot wait (``admit_s``) is taken off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.modeldir import resolve_config
from harness.plan import PlannedRequest
from harness.predict import CachePrediction
from simkv.latency.api import build_latency_model
from simkv.latency.calibrate import Calibration, load_calibration
from simkv.latency.costs import request_costs
from simkv.latency.serving import ServingOptions, simulate_serving
from simkv.models.geometry import spec_from_config


def predicted_ttft_s(plan: list[PlannedRequest], pc: CachePrediction,
                     calibration: Calibration | Path, *, concurrency: int | None,
                     token_budget: int | None, model_config: str) -> tuple[np.ndarray, list[int]]:
    """(predicted TTFT per request, the request ids), requests in send order."""
    calib = calibration if isinstance(calibration, Calibration) else load_calibration(Path(calibration))
    lat = build_latency_model(calibration=calib)
    by_req = {r.request: r for r in plan}
    endpoints = sorted(pc.per_endpoint)
    rows = []  # (scheduled, request, replica, local, external)
    for k, ep in enumerate(endpoints):
        p = pc.per_endpoint[ep]
        for j, req in enumerate(pc.request_ids[ep]):
            rows.append((by_req[int(req)].scheduled_s, int(req), k,
                         int(p.local_hit_tokens[j]), int(p.external_hit_tokens[j])))
    rows.sort()
    if not rows:
        return np.zeros(0), []
    arrival = np.asarray([r[0] for r in rows], dtype=np.float64)
    reqs = [r[1] for r in rows]
    replica = np.asarray([r[2] for r in rows], dtype=np.int64)
    local = np.asarray([r[3] for r in rows], dtype=np.int64)
    ext = np.asarray([r[4] for r in rows], dtype=np.int64)
    inp = np.asarray([len(by_req[r].prompt) for r in reqs], dtype=np.int64)
    out = np.asarray([by_req[r].max_tokens for r in reqs], dtype=np.int64)
    cfg, _ = resolve_config(model_config)
    spec = spec_from_config(cfg, name=str(model_config))
    costs = request_costs(lat, [spec], np.zeros(len(reqs), dtype=np.int64), inp, local, ext, out)
    served = simulate_serving(arrival, replica, len(endpoints), costs,
                              ServingOptions(token_budget=token_budget, max_concurrency=concurrency))
    return served.ttft_s - served.admit_s, reqs
