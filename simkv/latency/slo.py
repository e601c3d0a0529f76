"""Recommendation under a TTFT objective: replicas (GPUs) each cache configuration needs, the GPUs
caching saves, and the smallest configuration that meets the objective.

Every figure comes from :func:`simkv.latency.api.simulate_with_latency` runs: for a
configuration, the replica count is searched (doubling, then bisection) for the fewest replicas
whose TTFT quantile meets the objective, assuming more replicas never make it worse (true for
the routers shipped: more replicas only spread the same requests).  A GPU count is replicas x
tensor parallelism.  The no-cache baseline routes prefix-aware deployments by load instead
(with nothing cached, prefix affinity only concentrates load).  With ``tier="hbm"`` a capacity
is per replica: keep it within what HBM holds beside the weights.  The economics recommendation (``simkv recommend``) calls these functions.

Usage::

    from simkv.latency.slo import gpus_saved, smallest_config_meeting_slo
    saving = gpus_saved(trace, cfg, slo_p90_s=2.0, model="llama-3.1-8b", gpu="H100")
    rec = smallest_config_meeting_slo(trace, "llama-3.1-8b", configs, 2.0, "H100")
    rec.chosen.config, rec.chosen.gpus, rec.baseline.gpus
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simkv.cache.config import CacheConfig
from simkv.errors import InputError
from simkv.latency.api import simulate_with_latency
from simkv.latency.routing import MAX_TRACKED_REPLICAS
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource

#: The default TTFT objective: p90 time to first token <= 2 s.  Shared by every consumer that
#: sizes or judges a deployment (self-hosted fleets in simkv.economics, the report's headline);
#: a user sets their own with ``--ttft-slo-p90-s`` or a price book's ``ttft_slo_p90_s``.
DEFAULT_TTFT_SLO_P90_S = 2.0

#: The "no cache" configuration a saving is measured against (nothing is ever admitted).
NO_CACHE = CacheConfig(capacity_blocks=0)

#: the largest replica count the report tries before calling the load unservable
MAX_REPLICAS = 256
#: doubling the replicas must lower p90 by at least this share, or the p90 is a floor
FLAT = 0.01


@dataclass(frozen=True)
class SloPoint:
    """One configuration at the fewest replicas meeting the objective (None: not within reach)."""

    config: CacheConfig
    replicas: int | None
    gpus: int | None
    ttft_quantile_s: float | None  # at ``replicas`` (or at the largest count tried)
    meets: bool


@dataclass(frozen=True)
class GpuSavings:
    baseline: SloPoint
    cached: SloPoint
    gpus_saved: int | None  # None when either side cannot meet the objective


@dataclass(frozen=True)
class SloRecommendation:
    """``chosen``: fewest GPUs, then the smallest cache, among configurations meeting the SLO."""

    chosen: SloPoint | None
    points: tuple[SloPoint, ...]
    baseline: SloPoint
    gpus_saved: int | None


#: TTFT quantiles the latency simulation's summary streams exactly (``simkv.analysis.quantiles``,
#: equal to ``numpy.quantile`` of the records bit for bit): asked for one of these, a run keeps
#: no per-request records, so a search over replicas holds per-block state and the requests in
#: flight, never the whole trace.
STREAMED_QUANTILES = {0.5: "ttft_p50_s", 0.9: "ttft_p90_s", 0.99: "ttft_p99_s"}


def _quantile(trace: Trace | TraceSource, cfg: CacheConfig, replicas: int, q: float,
              kw: dict) -> float:
    key = STREAMED_QUANTILES.get(q)
    if key is not None:
        res = simulate_with_latency(trace, cfg, replicas=replicas, keep=False, **kw)
        return float(res.summary_dict[key])
    res = simulate_with_latency(trace, cfg, replicas=replicas, **kw)
    return float(np.quantile(res.records["ttft_s"].to_numpy(), q))


def replicas_needed(trace: Trace | TraceSource, cfg: CacheConfig, slo_s: float, *,
                    quantile: float = 0.9, max_replicas: int = 64, **kw: Any) -> SloPoint:
    """Fewest replicas whose TTFT ``quantile`` is <= ``slo_s`` (``kw`` go to the simulation).
    A ``TraceSource`` is read chunk by chunk on every run; for a quantile in
    :data:`STREAMED_QUANTILES` no run keeps records."""
    if not slo_s > 0:
        raise InputError("the TTFT objective must be > 0 seconds", where="slo")
    if not 0 < quantile < 1:
        raise InputError("quantile must be within (0, 1)", where="quantile")
    seen: dict[int, float] = {}

    def value(r: int) -> float:
        if r not in seen:
            seen[r] = _quantile(trace, cfg, r, quantile, kw)
        return seen[r]

    r, meets = search_replicas(value, slo_s, max_replicas, stop_when_flat=False)
    if not meets:
        return SloPoint(cfg, None, None, value(r), False)
    return SloPoint(cfg, r, r * int(kw.get("tensor_parallel", 1)), value(r), True)


def bisect_replicas(value, hi: int, slo_s: float) -> int:
    """Fewest replicas in ``(hi // 2, hi]`` with ``value(r) <= slo_s``, given that ``hi`` meets
    the objective and ``hi // 2`` does not (or is 0): bisection, TTFT falling with replicas."""
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if value(mid) <= slo_s:
            hi = mid
        else:
            lo = mid
    return hi


def gpus_saved(trace: Trace | TraceSource, cfg: CacheConfig, slo_p90_s: float, *,
               model: str | None = None,
               gpu: str = "H100", baseline: CacheConfig = NO_CACHE, **kw: Any) -> GpuSavings:
    """GPUs needed without caching (``baseline``) minus GPUs needed with ``cfg``."""
    kw.update(model=model, gpu=gpu)
    base = replicas_needed(trace, baseline, slo_p90_s, **_baseline_kw(kw))
    cached = replicas_needed(trace, cfg, slo_p90_s, **kw)
    saved = base.gpus - cached.gpus if base.meets and cached.meets else None
    return GpuSavings(base, cached, saved)


def _baseline_kw(kw: dict) -> dict:
    """Without a cache, prefix-aware routing only concentrates load: route by load instead."""
    if kw.get("routing") == "prefix_aware":
        return {**kw, "routing": "least_loaded"}
    return kw


def _size_key(cfg: CacheConfig) -> float:
    if cfg.capacity_bytes is not None:
        return float(cfg.capacity_bytes)
    if cfg.capacity_blocks is not None:
        return float(cfg.capacity_blocks)
    return math.inf


def smallest_config_meeting_slo(trace: Trace | TraceSource, model: str | None,
                                configs: list[CacheConfig],
                                slo_p90_s: float, gpu: str = "H100", *,
                                replicas: int | None = None, **kw: Any) -> SloRecommendation:
    """The configuration meeting the objective with the fewest GPUs, then the smallest cache.

    With ``replicas`` fixed, the smallest configuration whose TTFT p90 meets the objective at that
    replica count.  ``kw`` (``quantile``, ``max_replicas``, ``routing``, ``tier``, ...) go to
    :func:`replicas_needed` / the simulation.
    """
    if not configs:
        raise InputError("no cache configurations to compare", where="configs")
    kw.update(model=model, gpu=gpu)
    quantile = kw.pop("quantile", 0.9)
    max_replicas = kw.pop("max_replicas", 64)
    tp = int(kw.get("tensor_parallel", 1))
    ordered = sorted(configs, key=_size_key)
    if replicas is not None:
        points = []
        for cfg in ordered:
            v = _quantile(trace, cfg, replicas, quantile, kw)
            points.append(SloPoint(cfg, replicas, replicas * tp, v, v <= slo_p90_s))
        vb = _quantile(trace, NO_CACHE, replicas, quantile, _baseline_kw(kw))
        base = SloPoint(NO_CACHE, replicas, replicas * tp, vb, vb <= slo_p90_s)
        chosen = next((p for p in points if p.meets), None)
    else:
        points = [replicas_needed(trace, cfg, slo_p90_s, quantile=quantile,
                                  max_replicas=max_replicas, **kw) for cfg in ordered]
        base = replicas_needed(trace, NO_CACHE, slo_p90_s, quantile=quantile,
                               max_replicas=max_replicas, **_baseline_kw(kw))
        meeting = [p for p in points if p.meets]
        chosen = min(meeting, key=lambda p: (p.gpus, _size_key(p.config))) if meeting else None
    saved = None
    if chosen is not None and base.meets and replicas is None:
        saved = base.gpus - chosen.gpus
    return SloRecommendation(chosen, tuple(points), base, saved)


def report_slo_s(options: Any) -> float:
    """The run's TTFT p90 objective: ``options.ttft_slo_p90_s`` or the documented default."""
    value = getattr(options, "ttft_slo_p90_s", None)
    return DEFAULT_TTFT_SLO_P90_S if value is None else float(value)


@dataclass(frozen=True)
class SizedTtft:
    """TTFT percentiles at the fewest replicas meeting ``slo_p90_s`` (or where the search stopped)."""

    replicas: int
    meets: bool
    slo_p90_s: float
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    summary: dict
    records: Any  # the simulation's per-request records at ``replicas`` (pandas DataFrame)
    max_replicas: int = MAX_REPLICAS  # the largest count the search could try

    @property
    def over_slo_factor(self) -> float:
        """p90 / SLO (> 1 when the load cannot be served)."""
        return self.ttft_p90_s / self.slo_p90_s

    def describe(self, gpu: str) -> str:
        """One plain sentence: how many replicas, or that the load cannot be served."""
        if self.meets:
            return (f"{self.replicas} {gpu} replica(s), the fewest meeting TTFT p90 <= "
                    f"{self.slo_p90_s:g} s")
        if self.replicas >= self.max_replicas:
            return (f"cannot be served within TTFT p90 <= {self.slo_p90_s:g} s on up to "
                    f"{self.replicas} {gpu} replicas: p90 {self.ttft_p90_s:,.1f} s there, "
                    f"{self.over_slo_factor:,.1f}x the objective")
        return (f"cannot be served within TTFT p90 <= {self.slo_p90_s:g} s at any replica count: "
                f"from {self.replicas} {gpu} replicas on, p90 stays near {self.ttft_p90_s:,.1f} s, "
                f"{self.over_slo_factor:,.1f}x the objective")


def search_replicas(value, slo_s: float, max_replicas: int, *,
                    stop_when_flat: bool = True) -> tuple[int, bool]:
    """Fewest replicas with ``value(r) <= slo_s`` (``value`` memoised by the caller): doubling,
    then bisection (more replicas never make TTFT worse with the shipped routers).  With
    ``stop_when_flat`` (the report's sizing) the doubling stops early, as unservable, once
    doubling the replicas lowers p90 by less than ``FLAT`` (the p90 is then one request's own
    prefill and load, which no replica count shortens); the count returned is the smaller of
    that pair.  At ``max_replicas`` without meeting the objective it is unservable too, and
    that count is returned."""
    hi = 1
    while value(hi) > slo_s:
        if hi >= max_replicas:
            return hi, False
        nxt = min(2 * hi, max_replicas)
        if stop_when_flat and value(nxt) > slo_s and value(nxt) >= (1.0 - FLAT) * value(hi):
            return hi, False
        hi = nxt
    return bisect_replicas(value, hi, slo_s), True


def sized_ttft(trace: Trace | TraceSource, cfg: CacheConfig, *, slo_p90_s: float = DEFAULT_TTFT_SLO_P90_S,
               max_replicas: int = MAX_REPLICAS, **kw: Any) -> SizedTtft:
    """TTFT of ``cfg`` on ``trace`` at the fewest replicas meeting ``slo_p90_s`` (``kw``: gpu,
    tier, hbm_cache, model, routing, ...); each run is kept, so the chosen count's distribution
    is not simulated twice.  A ``TraceSource`` is read chunk by chunk on every run (no block
    chain of the whole trace is held); the per-request TTFT records are kept."""
    if not slo_p90_s > 0:
        raise InputError("the TTFT objective must be > 0 seconds", where="slo")
    if kw.get("routing") == "prefix_aware":  # the router tracks a bounded number of replicas
        max_replicas = min(max_replicas, MAX_TRACKED_REPLICAS)
    runs: dict[int, Any] = {}

    def value(r: int) -> float:
        if r not in runs:
            runs[r] = simulate_with_latency(trace, cfg, replicas=r, **kw)
        return float(np.quantile(runs[r].records["ttft_s"].to_numpy(), 0.9))

    replicas, meets = search_replicas(value, slo_p90_s, max_replicas)
    value(replicas)
    res = runs[replicas]
    ttft = res.records["ttft_s"].to_numpy()
    p50, p90, p99 = (float(np.quantile(ttft, q)) for q in (0.5, 0.9, 0.99))
    return SizedTtft(replicas=int(replicas), meets=meets, slo_p90_s=float(slo_p90_s),
                     ttft_p50_s=p50, ttft_p90_s=p90, ttft_p99_s=p99, summary=res.summary_dict,
                     records=res.records, max_replicas=int(max_replicas))
