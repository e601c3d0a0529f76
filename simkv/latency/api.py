"""``simulate_with_latency``: the cache engine plus TTFT under load (what ``simkv simulate
--latency`` calls).

Order of work, chosen so the expensive parts stay compiled:

1. route every request to a replica (``simkv.latency.routing``, one compiled pass);
2. look up cache hits with the exact cache engine in arrival order: with ``tier="hbm"`` the
   cache ``cfg`` is each replica's own HBM prefix cache (one kernel run per replica, capacity
   per replica); with a slower tier ``cfg`` is the persistent bucket shared by all replicas,
   optionally behind per-replica HBM caches (``hbm_cache``);
3. price each request (load or recompute, prefill, decode; ``simkv.latency.costs``);
4. run the SimPy engine loops (``simkv.latency.serving``) for queue waits and TTFT.

Blocks become reusable at their writer's arrival, not when its prefill ends (the cache engine's
clock); under heavy load this slightly flatters back-to-back requests of one session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simkv.cache.config import CacheConfig
from simkv.cache.engine import SimResult, resolve_trace_models, simulate
from simkv.cache.stream import dense_block_ids
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
    ServingOptions,
    simulate_serving,
)
from simkv.models.geometry import ModelSpec, get_model
from simkv.trace.model import Trace

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


def _block_positions(trace: Trace, rows: np.ndarray) -> np.ndarray:
    starts, ends = trace.block_offsets[rows], trace.block_offsets[rows + 1]
    lengths = ends - starts
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)


def _summary(trace: Trace, cfg: CacheConfig, rec: pd.DataFrame, hit: np.ndarray) -> dict:
    """The engine's summary fields, recomputed over requests served by several caches."""
    inp = int(trace.input_tokens.sum())
    acc = int(len(hit))
    lead = int(rec["prefix_hit_tokens"].sum())
    reused = int(rec["reused_tokens"].sum())
    return {
        "requests": int(trace.n_requests), "input_tokens": inp, "block_accesses": acc,
        "unique_blocks": int(dense_block_ids(trace)[1]),
        "block_hit_ratio": float(rec["hit_blocks"].sum() / acc) if acc else 0.0,
        "prefix_hit_tokens": lead, "prefix_token_hit_ratio": lead / inp if inp else 0.0,
        "reused_tokens": reused, "token_reuse_ratio": reused / inp if inp else 0.0,
        "evictions": int(rec["evictions"].sum()), "expirations": int(rec["expirations"].sum()),
        "policy": cfg.policy, "capacity_bytes": cfg.capacity_bytes,
        "capacity_blocks": cfg.capacity_blocks, "ttl_s": cfg.ttl_s, "ttl_mode": cfg.ttl_mode,
        "reuse": cfg.reuse, "block_tokens": trace.block_tokens,
    }


def per_replica_caches(trace: Trace, cfg: CacheConfig, route: np.ndarray, replicas: int,
                       specs: dict[str, ModelSpec] | None = None) -> SimResult:
    """Each replica's own cache over the requests routed to it, stitched in request order."""
    if replicas == 1:
        return simulate(trace, cfg, specs=specs)
    parts, hit = [], np.zeros(trace.n_block_accesses, dtype=np.uint8)
    for r in range(replicas):
        rows = np.flatnonzero(route == r)
        if not len(rows):
            continue
        res = simulate(trace.select(rows), cfg, specs=specs)
        rec = res.records
        rec["request"] = rows
        parts.append(rec)
        hit[_block_positions(trace, rows)] = res.hit
    records = pd.concat(parts, ignore_index=True).sort_values("request", kind="stable")
    records = records.reset_index(drop=True)
    records["arrival_s"] = trace.arrival_s
    return SimResult(config=cfg, records=records, summary_dict=_summary(trace, cfg, records, hit),
                     hit=hit)


def _percentiles(values: np.ndarray, prefix: str) -> dict[str, float | None]:
    if not len(values):
        return {f"{prefix}_p50_s": None, f"{prefix}_p90_s": None, f"{prefix}_p99_s": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {f"{prefix}_p50_s": float(p50), f"{prefix}_p90_s": float(p90), f"{prefix}_p99_s": float(p99)}


def _cache_hits(trace: Trace, cfg: CacheConfig, tier: str, route: np.ndarray, replicas: int,
                spec_map: dict[str, ModelSpec], hbm_cache: CacheConfig | None,
                ) -> tuple[SimResult, np.ndarray, np.ndarray]:
    """The cache result, and per request the tokens resident on the replica and those loadable.

    A resident tier (HBM) is one cache per replica; a storage tier is one shared bucket, from
    which whatever the replica's own HBM cache (``hbm_cache``) does not hold is loaded.
    """
    zeros = np.zeros(trace.n_requests, dtype=np.int64)
    if TIERS.get(tier, where="--tier").resident:
        result = per_replica_caches(trace, cfg, route, replicas, spec_map)
        return result, result.records["reused_tokens"].to_numpy(), zeros
    result = simulate(trace, cfg, specs=spec_map)
    bucket = result.records["reused_tokens"].to_numpy()
    if hbm_cache is not None:
        resident = per_replica_caches(trace, hbm_cache, route, replicas, spec_map) \
            .records["reused_tokens"].to_numpy()
        resident = np.minimum(resident, bucket) if hbm_cache.reuse == cfg.reuse else resident
    else:
        resident = zeros
    return result, resident, np.maximum(bucket - resident, 0)


def simulate_with_latency(trace: Trace, cfg: CacheConfig, *, model: str | None = None,
                          gpu: str = "H100", replicas: int = 1, routing: str = "round_robin",
                          calibration: Path | None = None, tier: str = "hbm",
                          tensor_parallel: int = 1, token_budget: int | None = DEFAULT_TOKEN_BUDGET,
                          max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY,
                          overlap: bool = False, efficiency: float = DEFAULT_EFFICIENCY,
                          overhead_s: float = 0.0, hbm_cache: CacheConfig | None = None,
                          specs: dict[str, ModelSpec] | None = None) -> SimResult:
    """Cache simulation plus per-request queue wait, load, compute and TTFT under load.

    Returns the engine's ``SimResult`` whose records gain ``replica, resident_tokens,
    loaded_tokens, computed_tokens, queue_s, load_s, compute_s, ttft_s, load_beats_recompute``
    and whose summary gains ``ttft_p50_s, ttft_p90_s, ttft_p99_s`` (and queue percentiles,
    the GPU count and the settings used).  See the module docstring for the order of work.
    """
    if replicas < 1:
        raise InputError("replicas must be >= 1", where="--replicas")
    for name, value in (("--token-budget", token_budget), ("--max-concurrency", max_concurrency)):
        if value is not None and value < 1:
            raise InputError("must be >= 1 (or unset for no limit)", where=name)
    trace = resolve_trace_models(trace, model)
    if not trace.has_models:
        raise InputError("latency needs the model each request runs on: give --model NAME",
                         where="--model")
    lat = build_latency_model(gpu=gpu, tier=tier, tensor_parallel=tensor_parallel,
                              efficiency=efficiency, overhead_s=overhead_s,
                              calibration=calibration)
    model_list = _specs(trace, specs)
    spec_map = {s.name: s for s in model_list}
    spec_index = trace.model_index.astype(np.int64)
    zeros = np.zeros(trace.n_requests, dtype=np.int64)

    # 1. route, with each request's standalone full-prefill time as the router's cost estimate
    router = ROUTERS.get(routing, where="--routing")
    estimate = None
    if getattr(router, "needs_estimate", True) and replicas > 1:
        full = request_costs(lat, model_list, spec_index, trace.input_tokens, zeros, zeros,
                             trace.output_tokens)
        per_token = (full.compute_s - full.fixed_s) / np.maximum(trace.input_tokens, 1)
        estimate = RoutingEstimate(fixed_s=full.fixed_s, per_token_s=per_token)
    route = router(trace, int(replicas), estimate)

    # 2. cache hits
    result, resident, loadable = _cache_hits(trace, cfg, tier, route, replicas, spec_map, hbm_cache)

    # 3. price each request, 4. serve under load
    costs = request_costs(lat, model_list, spec_index, trace.input_tokens, resident, loadable,
                          trace.output_tokens, overlap=overlap)
    served = simulate_serving(trace.arrival_s, route, int(replicas), costs,
                              ServingOptions(token_budget=token_budget,
                                             max_concurrency=max_concurrency))

    rec = result.records
    rec["replica"] = route
    rec["resident_tokens"] = np.minimum(resident, costs.cached_tokens)
    rec["loaded_tokens"] = costs.loaded_tokens
    rec["computed_tokens"] = costs.computed_tokens
    rec["queue_s"] = served.queue_s
    rec["load_s"] = costs.load_s
    rec["compute_s"] = costs.compute_s
    rec["ttft_s"] = served.ttft_s
    rec["load_beats_recompute"] = costs.load_beats_recompute
    summary = dict(result.summary_dict)
    summary.update(_percentiles(served.ttft_s, "ttft"))
    summary["ttft_mean_s"] = float(served.ttft_s.mean()) if len(served.ttft_s) else None
    summary.update(_percentiles(served.queue_s, "queue"))
    summary.update({
        "gpu": gpu, "tier": tier, "replicas": int(replicas), "tensor_parallel": int(tensor_parallel),
        "gpus": int(replicas) * int(tensor_parallel), "routing": routing,
        "latency_model": "calibrated" if isinstance(lat, CalibratedLatency) else "analytic",
        "loaded_tokens": int(costs.loaded_tokens.sum()),
        "load_beats_recompute_share": float(costs.load_beats_recompute.mean())
        if trace.n_requests else 0.0,
        "engine_steps": served.steps,
    })
    return SimResult(config=cfg, records=rec, summary_dict=summary, hit=result.hit)


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
