"""Self-hosted fleets: the replicas a trace needs within a TTFT objective, with and without a cache.

A team that serves its own model buys replicas, not prefill seconds: what caching saves it is
GPUs.  The replica count comes from the SimPy serving simulation
(:func:`simkv.latency.slo.gpus_saved`: the fewest replicas whose TTFT p90 meets the objective,
prefix-aware routing with the cache, least-loaded routing without it).  Two sizings:

- ``busiest_hour`` (default): the trace is cut into hours from its first arrival; the hour with
  the most input tokens is simulated on its own and its replica count runs all month
  (``replicas x gpus_per_replica x $/GPU-hour x 24 x days``);
- ``per_hour`` (autoscaling): every hour gets its own count (none in an hour without
  requests); the month pays the trace's mean GPU-hours per hour (a partial last hour weighted
  by its length).

Each hour is simulated from a cold cache (no carry-over from the hour before): conservative for
the cached fleet.  A trace shorter than an hour is one slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkv.cache.config import CacheConfig
from simkv.economics.requests import BillTrace
from simkv.latency.slo import gpus_saved
from simkv.models.geometry import ModelSpec
from simkv.trace.model import Trace

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
#: Routing with a cache (requests go where their prefix is) and, for the baseline, by load.
CACHED_ROUTING = "prefix_aware"
SIZINGS = ("busiest_hour", "per_hour")


@dataclass(frozen=True)
class HourFleet:
    """Replicas one hour of traffic needs (None: not reachable within ``max_replicas``)."""

    hour: int
    weight: float  # fraction of an hour this slice covers
    input_tokens: int
    replicas_cached: int | None
    replicas_no_cache: int | None
    ttft_p90_cached_s: float | None
    ttft_p90_no_cache_s: float | None


@dataclass(frozen=True)
class Fleet:
    """Month-average replicas with and without the cache, and the hours they come from."""

    sizing: str
    replicas_cached: float | None
    replicas_no_cache: float | None
    hours: tuple[HourFleet, ...]

    @property
    def reachable(self) -> bool:
        return self.replicas_cached is not None and self.replicas_no_cache is not None


def hour_slices(trace: Trace | BillTrace) -> list[tuple[int, range, float, int]]:
    """(hour index, request rows, weight, input tokens) per hour of the trace (an hour without
    requests has no rows: an autoscaled fleet runs no replica then).  Arrivals never decrease,
    so an hour's rows are a range (held as one); a :class:`BillTrace` is counted a chunk at a
    time."""
    if isinstance(trace, BillTrace):
        t0 = trace.facts.first_arrival_s
        parts = ((c.arrival_s, c.input_tokens) for c in trace.column_chunks())
    else:
        t0 = float(trace.arrival_s[0]) if trace.n_requests else 0.0
        parts = iter([(trace.arrival_s, trace.input_tokens)])
    counts, tokens = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    span = 0.0
    for arrival, inp in parts:
        if not len(arrival):
            continue
        t = arrival - t0
        idx = np.floor(t / SECONDS_PER_HOUR).astype(np.int64)
        if int(idx[-1]) >= len(counts):
            counts, tokens = (np.concatenate([a, np.zeros(int(idx[-1]) + 1 - len(a), np.int64)])
                              for a in (counts, tokens))
        np.add.at(counts, idx, 1)
        np.add.at(tokens, idx, np.asarray(inp, dtype=np.int64))
        span = float(t[-1])
    n_hours = len(counts)
    starts = np.concatenate(([0], np.cumsum(counts)))
    out = []
    for h in range(n_hours):
        weight = 1.0 if h < n_hours - 1 else max(span - h * SECONDS_PER_HOUR, 0.0) / SECONDS_PER_HOUR
        out.append((h, range(int(starts[h]), int(starts[h + 1])),
                    weight if n_hours > 1 else 1.0, int(tokens[h])))
    return out


def size_hour(trace: Trace, cfg: CacheConfig, spec: ModelSpec, *, gpu: str, slo_p90_s: float,
              max_replicas: int, tensor_parallel: int = 1
              ) -> tuple[int | None, int | None, float | None, float | None]:
    """(replicas with cfg, replicas without a cache, their TTFT p90s) for one slice."""
    res = gpus_saved(trace, cfg, slo_p90_s, model=None, gpu=gpu, specs={spec.name: spec},
                     routing=CACHED_ROUTING, max_replicas=max_replicas,
                     tensor_parallel=tensor_parallel)
    return (res.cached.replicas, res.baseline.replicas, res.cached.ttft_quantile_s,
            res.baseline.ttft_quantile_s)


def size_fleet(trace: Trace | BillTrace, cfg: CacheConfig, spec: ModelSpec, *, gpu: str,
               slo_p90_s: float, sizing: str = "busiest_hour", max_replicas: int = 256,
               tensor_parallel: int = 1) -> Fleet:
    """The fleet for ``trace`` under ``sizing`` (see the module docstring).  A
    :class:`BillTrace` is read back one hour at a time: only the simulated hour's blocks are
    held."""
    if sizing not in SIZINGS:
        raise ValueError(f"unknown sizing {sizing!r} (valid: {', '.join(SIZINGS)})")
    slices = hour_slices(trace)
    if sizing == "busiest_hour":
        slices = [slices[int(np.argmax([tokens for *_, tokens in slices]))]]
    hours = []
    for h, rows, weight, _ in slices:
        if not len(rows):
            hours.append(HourFleet(h, weight, 0, 0, 0, None, None))
            continue
        sub = trace.select(np.arange(rows.start, rows.stop, dtype=np.int64))
        rc, rb, qc, qb = size_hour(sub, cfg, spec, gpu=gpu, slo_p90_s=slo_p90_s,
                                   max_replicas=max_replicas, tensor_parallel=tensor_parallel)
        hours.append(HourFleet(h, weight, int(sub.input_tokens.sum()), rc, rb, qc, qb))

    def mean(attr: str) -> float | None:
        vals = [getattr(x, attr) for x in hours]
        if any(v is None for v in vals):
            return None
        w = np.array([x.weight for x in hours]) if sizing == "per_hour" else np.ones(len(hours))
        return float(np.dot(vals, w) / w.sum())

    return Fleet(sizing, mean("replicas_cached"), mean("replicas_no_cache"), tuple(hours))


def monthly_fleet_usd(replicas: float, *, gpus_per_replica: int, usd_per_gpu_hour: float,
                      days_per_month: float) -> float:
    """``replicas x gpus_per_replica x $/GPU-hour x 24 x days``."""
    return replicas * gpus_per_replica * usd_per_gpu_hour * HOURS_PER_DAY * days_per_month
