"""``simulate_with_latency``: the cache engine plus TTFT under load (what ``simkv simulate
--latency`` calls).

The trace streams chunk by chunk (``simkv.latency.trace_run``, docs/streaming.md); per chunk,
in an order chosen so the expensive parts stay compiled:

1. route each request to a replica (``simkv.latency.routing``, a compiled pass per chunk, the
   router's state carried);
2. look up cache hits with the exact cache engine in arrival order: with ``tier="hbm"`` the
   cache ``cfg`` is each replica's own HBM prefix cache (one carried kernel state per replica,
   capacity per replica); with a slower tier ``cfg`` is the persistent bucket shared by all
   replicas, optionally behind per-replica HBM caches (``hbm_cache``);
3. price each request (load or recompute, prefill, decode; ``simkv.latency.costs``);
4. hand the chunk to the SimPy engine loops (``simkv.latency.serving``), which pull the next
   one when the simulated clock reaches it, for queue waits and TTFT.

Blocks become reusable at their writer's arrival, not when its prefill ends (the cache engine's
clock); under heavy load this slightly flatters back-to-back requests of one session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from simkv import guard
from simkv.analysis.quantiles import Spill
from simkv.cache.config import CacheConfig
from simkv.cache.engine import CacheRun, SimResult, resolve_trace_models
from simkv.errors import InputError
from simkv.latency.costs import (
    DEFAULT_EFFICIENCY,
    AnalyticLatency,
    CalibratedLatency,
    LatencyModel,
    request_costs,
)
from simkv.latency.hardware import GPUS, TIERS
from simkv.latency.routing import ROUTERS, RoutingEstimate
from simkv.latency.serving import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TOKEN_BUDGET,
    ServingChunk,
    ServingOptions,
    serve_stream,
)
from simkv.latency.trace_run import Records, ReplicaCaches
from simkv.models.geometry import ModelSpec, get_model
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource

#: starting memory of one replica's state (id map, sizes, kernel and engine-loop arrays),
#: rounded up; each grows with the blocks and requests the replica sees
REPLICA_STATE_BYTES = 64 * 1024

LATENCY_COLUMNS = ("replica", "resident_tokens", "loaded_tokens", "computed_tokens", "queue_s",
                   "load_s", "compute_s", "ttft_s", "load_beats_recompute")


def build_latency_model(*, gpu: str = "H100", tier: str = "hbm", tensor_parallel: int = 1,
                        efficiency: float = DEFAULT_EFFICIENCY, overhead_s: float = 0.0,
                        calibration=None) -> LatencyModel:
    """The analytic model for ``gpu``/``tier``, or the calibrated one when ``calibration`` is
    given (a path to a calibration YAML or a loaded ``Calibration``)."""
    if tensor_parallel < 1:
        raise InputError("tensor parallelism must be >= 1", where="--tp")
    if not 0.0 < efficiency <= 1.0:
        raise InputError("efficiency must be within (0, 1]", where="efficiency")
    analytic = AnalyticLatency(gpu=GPUS.get(gpu, where="--gpu"), tier=TIERS.get(tier, where="--tier"),
                               efficiency=efficiency, overhead_s=overhead_s,
                               tensor_parallel=int(tensor_parallel))
    if calibration is None:
        return analytic
    from simkv.latency.calibrate import Calibration, load_calibration

    calib = calibration if isinstance(calibration, Calibration) else load_calibration(Path(calibration))
    return CalibratedLatency(coefficients=calib.coefficients(), fallback=analytic,
                             decode_step_measured_s=calib.decode_step_s)


def _specs(trace: Trace, specs: dict[str, ModelSpec] | None) -> list[ModelSpec]:
    specs = specs or {}
    return [specs.get(m) or get_model(m) for m in trace.models]


def _cache_lookup(caches: dict, chunk: Trace, route: np.ndarray, first: int, resident_tier: bool,
                  same_reuse: bool) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """One chunk's cache records and hits, and per request the tokens resident on the replica
    and those loadable.  A resident tier (HBM) is one cache per replica; a storage tier is one
    shared bucket, from which whatever the replica's own HBM cache does not hold is loaded."""
    zeros = np.zeros(chunk.n_requests, dtype=np.int64)
    if resident_tier:
        rec, hit = caches["replicas"].feed(chunk, route, first)
        return rec, hit, rec["reused_tokens"], zeros
    rec, hit = caches["bucket"].feed(chunk)
    bucket = rec["reused_tokens"]
    resident = zeros
    if caches.get("hbm") is not None:
        resident = caches["hbm"].feed(chunk, route, first)[0]["reused_tokens"]
        resident = np.minimum(resident, bucket) if same_reuse else resident
    return rec, hit, resident, np.maximum(bucket - resident, 0)


def _make_caches(cfg: CacheConfig, hbm_cache: CacheConfig | None, resident_tier: bool,
                 replicas: int, spec_map: dict) -> dict:
    if resident_tier:
        return {"replicas": ReplicaCaches(cfg, replicas, spec_map)}
    return {"bucket": CacheRun(cfg, specs=spec_map),
            "hbm": None if hbm_cache is None else ReplicaCaches(hbm_cache, replicas, spec_map)}


def _estimate(lat: LatencyModel, model_list: list[ModelSpec], spec_index: np.ndarray,
              chunk: Trace) -> RoutingEstimate:
    """The router's cost estimate: each request's standalone full-prefill time."""
    zeros = np.zeros(chunk.n_requests, dtype=np.int64)
    full = request_costs(lat, model_list, spec_index, chunk.input_tokens, zeros, zeros,
                         chunk.output_tokens)
    per_token = (full.compute_s - full.fixed_s) / np.maximum(chunk.input_tokens, 1)
    return RoutingEstimate(fixed_s=full.fixed_s, per_token_s=per_token)


def _percentiles(spill: Spill, prefix: str) -> dict[str, float | None]:
    values = spill.percentiles((50, 90, 99))
    return {f"{prefix}_p{p}_s": values[p] for p in (50, 90, 99)}


def simulate_with_latency(trace: Trace | TraceSource, cfg: CacheConfig, *, model: str | None = None,
                          gpu: str = "H100", replicas: int = 1, routing: str = "round_robin",
                          calibration: Path | None = None, tier: str = "hbm",
                          tensor_parallel: int = 1, token_budget: int | None = DEFAULT_TOKEN_BUDGET,
                          max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY,
                          overlap: bool = False, efficiency: float = DEFAULT_EFFICIENCY,
                          overhead_s: float = 0.0, hbm_cache: CacheConfig | None = None,
                          specs: dict[str, ModelSpec] | None = None,
                          chunk_requests: int | None = None, keep: bool = True,
                          sink: Callable[[pd.DataFrame], None] | None = None,
                          on_chunk: Callable[[int], None] | None = None) -> SimResult:
    """Cache simulation plus per-request queue wait, load, compute and TTFT under load.

    Returns the engine's ``SimResult`` whose records gain ``replica, resident_tokens,
    loaded_tokens, computed_tokens, queue_s, load_s, compute_s, ttft_s, load_beats_recompute``
    and whose summary gains ``ttft_p50_s, ttft_p90_s, ttft_p99_s`` (and queue percentiles,
    the GPU count and the settings used).  The trace streams chunk by chunk
    (``simkv.latency.trace_run``); ``keep=False`` holds no records (``sink`` gets them as
    they complete), so memory does not grow with the requests.  See the module docstring
    for the order of work.
    """
    if replicas < 1:
        raise InputError("replicas must be >= 1", where="--replicas")
    for name, value in (("--token-budget", token_budget), ("--max-concurrency", max_concurrency)):
        if value is not None and value < 1:
            raise InputError("must be >= 1 (or unset for no limit)", where=name)
    # per replica: its cache's id map, sizes and kernel state, its engine loop's buffers
    guard.check(float(replicas) * REPLICA_STATE_BYTES,
                f"--replicas {replicas} (each replica's cache and engine state)")
    lat = build_latency_model(gpu=gpu, tier=tier, tensor_parallel=tensor_parallel,
                              efficiency=efficiency, overhead_s=overhead_s,
                              calibration=calibration)
    factory = ROUTERS.get(routing, where="--routing")
    router = factory(int(replicas))
    resident_tier = TIERS.get(tier, where="--tier").resident
    source = TraceSource.of(trace)
    records = Records(keep, sink, on_chunk)
    state: dict = {"loads": 0, "beats": 0, "n": 0}

    def priced():
        """Chunks routed, looked up and priced, pulled by the SimPy feed as it needs them."""
        caches: dict | None = None
        first = 0
        for chunk in source.chunks(chunk_requests, ids_as_keys=True):
            chunk = resolve_trace_models(chunk, model)
            if not chunk.has_models:
                raise InputError("latency needs the model each request runs on: give --model "
                                 "NAME", where="--model")
            model_list = _specs(chunk, specs)
            spec_map = {s.name: s for s in model_list}
            if caches is None:
                caches = state["caches"] = _make_caches(cfg, hbm_cache, resident_tier, replicas,
                                                        spec_map)
            spec_index = chunk.model_index.astype(np.int64)
            estimate = None  # 1. route, with each request's standalone full-prefill time
            if getattr(factory, "needs_estimate", True) and replicas > 1:
                estimate = _estimate(lat, model_list, spec_index, chunk)
            route = router.route(chunk, estimate)
            rec, hit, resident, loadable = _cache_lookup(  # 2. cache hits
                caches, chunk, route, first, resident_tier,
                hbm_cache is not None and hbm_cache.reuse == cfg.reuse)
            costs = request_costs(lat, model_list, spec_index, chunk.input_tokens, resident,
                                  loadable, chunk.output_tokens, overlap=overlap)  # 3. prices
            rec.update(replica=route, resident_tokens=np.minimum(resident, costs.cached_tokens),
                       loaded_tokens=costs.loaded_tokens, computed_tokens=costs.computed_tokens,
                       load_s=costs.load_s, compute_s=costs.compute_s,
                       load_beats_recompute=costs.load_beats_recompute)
            state.update(loads=state["loads"] + int(costs.loaded_tokens.sum()), n=state["n"] +
                         chunk.n_requests, beats=state["beats"] + int(costs.load_beats_recompute.sum()))
            records.add(first, rec, hit)
            yield ServingChunk(first, chunk.arrival_s, route, costs)  # 4. served under load
            first += chunk.n_requests

    try:
        steps = serve_stream(priced(), int(replicas), float(lat.fixed_s), ServingOptions(
            token_budget=token_budget, max_concurrency=max_concurrency), records.on_done)
        return _result(cfg, state, records, lat, steps, gpu=gpu, tier=tier, replicas=replicas,
                       tensor_parallel=tensor_parallel, routing=routing)
    finally:
        records.close()


def _result(cfg: CacheConfig, state: dict, records: Records, lat, steps: int, *, gpu: str,
            tier: str, replicas: int, tensor_parallel: int, routing: str) -> SimResult:
    caches = state.get("caches") or {"bucket": CacheRun(cfg)}
    main = caches.get("replicas") or caches["bucket"]
    summary = dict(main.summary())
    summary.update(_percentiles(records.ttft, "ttft"))
    summary["ttft_mean_s"] = records.ttft.mean()
    summary.update(_percentiles(records.queue, "queue"))
    summary.update({
        "gpu": gpu, "tier": tier, "replicas": int(replicas), "tensor_parallel": int(tensor_parallel),
        "gpus": int(replicas) * int(tensor_parallel), "routing": routing,
        "latency_model": "calibrated" if isinstance(lat, CalibratedLatency) else "analytic",
        "loaded_tokens": state["loads"],
        "load_beats_recompute_share": state["beats"] / state["n"] if state["n"] else 0.0,
        "engine_steps": steps,
    })
    rec = hit = None
    if records.keep:
        rec = pd.concat(records.kept, ignore_index=True) if len(records.kept) != 1 else \
            records.kept[0]
        hit = np.concatenate(records.hits) if records.hits else np.zeros(0, dtype=np.uint8)
    return SimResult(config=cfg, records=rec, summary_dict=summary, hit=hit)


def prefill_tokens_per_s(spec: ModelSpec, gpu: str, *, context_tokens: int = 8192,
                         tensor_parallel: int = 1, efficiency: float = DEFAULT_EFFICIENCY) -> float:
    """Sustained prefill throughput of one replica (tokens/s): a ``context_tokens``-long prompt
    prefilled from scratch, compute- or memory-bound as the roofline says.

    The self-hosted price book uses it to price recomputation in GPU time when the user gives
    no measured throughput.
    """
    lat = build_latency_model(gpu=gpu, tensor_parallel=tensor_parallel, efficiency=efficiency)
    new, cached = np.array([float(context_tokens)]), np.array([0.0])
    seconds = float(np.maximum(lat.work_s(spec, new, cached), lat.floor_s(spec, new, cached))[0])
    return context_tokens / seconds
