"""Predicted TTFT of the sent requests: calibrated costs through the serving simulation.

Each request's cache hits come from :mod:`harness.predict` (vLLM-local and LMCache-loaded
tokens); the calibrated linear model prices them (:func:`simkv.latency.costs.request_costs`,
decode from the calibration's measured step); :func:`simkv.latency.serving.simulate_serving`
runs the engine's steps per endpoint at the replay's planned send times, with vLLM's token
budget and the client's cap on requests in flight as the slot limit; when vLLM's side was
predicted by the scheduler emulator (more than one request in flight, one endpoint), its steps
are priced instead (:func:`step_ttft_s`), so queueing, batching and chunking are the ones that
decided the cache hits.  The client's TTFT starts
when it sends, i.e. when a slot frees, so the slot wait (``admit_s``) is taken off; with more
than one in flight it also pays the client's longer trip (:meth:`Calibration.extra_trip_s`,
measured on the calibration's replays at those levels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.modeldir import resolve_config
from harness.plan import PlannedRequest
from harness.predict import CachePrediction
from simkv.cache.vllm_sched import SchedResult
from simkv.latency.api import build_latency_model
from simkv.latency.calibrate import Calibration, load_calibration
from simkv.latency.costs import request_costs
from simkv.latency.serving import ServingOptions, simulate_serving
from simkv.models.geometry import spec_from_config


def step_ttft_s(lat, spec, sched: SchedResult, prompt: np.ndarray, *,
                trip_s: float = 0.0, one_in_flight_trip_s: float = 0.0) -> np.ndarray:
    """TTFT per request from the scheduler emulator's steps, each step priced by the
    calibrated model: a step that prefills pays the fixed part once (a forward pass) plus
    every chunk's uncached work (its tokens over the
    context before it) and, on a request's first chunk, the cached term for the tokens it
    reused (vLLM-local or loaded from LMCache); a step that only decodes takes the measured
    decode step.  A request's TTFT is the steps from the one it was seen in to the one that
    gave its first token: its queueing, the chunks batched with it, and its own, plus half
    the step that was running when it arrived (the engine core adds requests between
    forward passes), plus the client's trip.  At one in flight that is the calibrated TTFT
    itself (fixed + work + cached term): nothing else runs.

    The intercept holds the client's trip measured one at a time (``one_in_flight_trip_s``),
    which a request pays once, not once per step: each step's fixed part leaves it out and
    each request adds its trip at this many in flight (``trip_s``).  On 3 pooled replays of
    each trace at 8 in flight (docs/harness.md) that moved the Mooncake slice's p50 error
    from 8.6% to 3.3% (its long prompts span several chunked steps) and the generated
    trace's from 2.4% to 4.9%."""
    work = sched.step_work
    n_steps = int(work[:, 0].max()) + 1 if len(work) else 0
    step_s = np.zeros(n_steps)
    if len(work):
        step, req, n, before = (work[:, k] for k in range(4))
        decode = before >= prompt[req]
        first = np.zeros(len(work), dtype=bool)
        first[np.unique(req, return_index=True)[1]] = True
        pre = ~decode
        cost = np.zeros(len(work))
        cost[pre] = lat.work_s(spec, n[pre], before[pre])
        cost[first] += lat.load_s(spec, before[first])
        np.add.at(step_s, step, cost)
        pre_steps = np.unique(step[pre])
        # one forward's fixed part per step that prefills (the client's trip is per request)
        step_s[pre_steps] += max(lat.fixed_s - one_in_flight_trip_s, 0.0)
        dec_only = np.setdiff1d(np.unique(step[decode]), pre_steps)
        step_s[dec_only] += lat.decode_step_s(spec, np.zeros(len(dec_only)))
    ends = np.cumsum(step_s)
    starts = ends - step_s
    ft, arrive = sched.first_token_step, np.maximum(sched.arrival_step, 0)
    seen = np.minimum(arrive, ft)
    # it arrived while the step before ran (an idle engine's step costs 0): the engine core
    # takes new requests only between forward passes, so it waits that step's rest, half of
    # it on average (measured: vLLM's TTFT minus queue and prefill time grows by about that)
    residual = np.where(seen > 0, step_s[np.maximum(seen - 1, 0)] / 2, 0.0)
    ttft = ends[ft] - starts[seen] + residual + trip_s
    return np.where(ft >= 0, ttft, np.nan)  # a request the engine refused never started


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
    # the client's trip beyond the one in the intercept, as measured at this many in flight
    trip = calib.extra_trip_s(concurrency)
    costs = request_costs(lat, [spec], np.zeros(len(reqs), dtype=np.int64), inp, local, ext, out)
    if pc.schedules and len(endpoints) == 1 and (concurrency or 0) > 1:
        sched = pc.schedules[endpoints[0]]  # rows in send order: the emulator's order
        order = {int(r): j for j, r in enumerate(pc.request_ids[endpoints[0]])}
        t1 = calib.one_in_flight_trip_s
        ttft = step_ttft_s(lat, spec, sched, np.asarray(
            [len(by_req[int(r)].prompt) for r in pc.request_ids[endpoints[0]]], dtype=np.int64),
            trip_s=t1 + trip, one_in_flight_trip_s=t1)
        return ttft[[order[r] for r in reqs]], reqs
    served = simulate_serving(arrival, replica, len(endpoints), costs,
                              ServingOptions(token_budget=token_budget, max_concurrency=concurrency))
    return served.ttft_s - served.admit_s + trip, reqs
