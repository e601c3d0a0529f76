"""TTFT at a replica count sized to the load: the fewest replicas meeting a TTFT p90 objective.

Why: a TTFT predicted on a fixed replica count says nothing a buyer can use when the load needs
more replicas than that (the support assistant's p90 on one H100 was 11.5 minutes).  Every TTFT
the report predicts goes through :func:`sized_ttft`: it finds the smallest replica count whose
p90 meets the objective (doubling then bisection, as :func:`simkv.latency.slo.replicas_needed`,
keeping each run so the chosen count's distribution is not simulated twice), and, when no count
meets it, says so and by how much: the p90 floor (one request's own prefill already exceeds the
objective, so doubling the replicas stops helping) over the SLO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simkv.cache.config import CacheConfig
from simkv.errors import InputError
from simkv.latency.api import simulate_with_latency
from simkv.latency.slo import DEFAULT_TTFT_SLO_P90_S
from simkv.trace.model import Trace

#: the largest replica count the report tries before calling the load unservable
MAX_REPLICAS = 256
#: doubling the replicas must lower p90 by at least this share, or the p90 is a floor
FLAT = 0.01


def report_slo_s(options: Any) -> float:
    """The run's TTFT p90 objective: ``options.ttft_slo_p90_s`` or the documented default."""
    value = getattr(options, "ttft_slo_p90_s", None)
    return DEFAULT_TTFT_SLO_P90_S if value is None else float(value)


@dataclass(frozen=True)
class SizedTtft:
    """TTFT percentiles at the fewest replicas meeting ``slo_p90_s`` (or at ``MAX_REPLICAS``)."""

    replicas: int
    meets: bool
    slo_p90_s: float
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    summary: dict
    records: Any  # the simulation's per-request records at ``replicas`` (pandas DataFrame)

    @property
    def over_slo_factor(self) -> float:
        """p90 / SLO (> 1 when the load cannot be served within ``MAX_REPLICAS``)."""
        return self.ttft_p90_s / self.slo_p90_s

    def describe(self, gpu: str) -> str:
        """One plain sentence: how many replicas, or that the load cannot be served."""
        if self.meets:
            return (f"{self.replicas} {gpu} replica(s), the fewest meeting TTFT p90 <= "
                    f"{self.slo_p90_s:g} s")
        if self.replicas >= MAX_REPLICAS:
            return (f"cannot be served within TTFT p90 <= {self.slo_p90_s:g} s on up to "
                    f"{self.replicas} {gpu} replicas: p90 {self.ttft_p90_s:,.1f} s there, "
                    f"{self.over_slo_factor:,.1f}x the objective")
        return (f"cannot be served within TTFT p90 <= {self.slo_p90_s:g} s at any replica count: "
                f"from {self.replicas} {gpu} replicas on, p90 stays near {self.ttft_p90_s:,.1f} s, "
                f"{self.over_slo_factor:,.1f}x the objective")


def _search(value, slo_s: float, max_replicas: int) -> tuple[int, bool]:
    """Fewest replicas with ``value(r) <= slo_s``: doubling, then bisection (more replicas never
    make TTFT worse with the shipped routers).  The doubling stops early, as unservable, once
    doubling the replicas lowers p90 by less than ``FLAT`` (the p90 is then one request's own
    prefill and load, which no replica count shortens); the count returned is the smaller of
    that pair.  At ``max_replicas`` without meeting the objective it is unservable too."""
    hi = 1
    while value(hi) > slo_s:
        if hi >= max_replicas:
            return hi, False
        nxt = min(2 * hi, max_replicas)
        if value(nxt) > slo_s and value(nxt) >= (1.0 - FLAT) * value(hi):
            return hi, False
        hi = nxt
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if value(mid) <= slo_s:
            hi = mid
        else:
            lo = mid
    return hi, True


def sized_ttft(trace: Trace, cfg: CacheConfig, *, slo_p90_s: float = DEFAULT_TTFT_SLO_P90_S,
               max_replicas: int = MAX_REPLICAS, **kw: Any) -> SizedTtft:
    """Size replicas for ``cfg`` on ``trace`` (``kw``: gpu, tier, hbm_cache, model, ...)."""
    if not slo_p90_s > 0:
        raise InputError("the TTFT objective must be > 0 seconds", where="slo")
    runs: dict[int, Any] = {}

    def value(r: int) -> float:
        if r not in runs:
            runs[r] = simulate_with_latency(trace, cfg, replicas=r, **kw)
        return float(np.quantile(runs[r].records["ttft_s"].to_numpy(), 0.9))

    replicas, meets = _search(value, slo_p90_s, max_replicas)
    value(replicas)
    res = runs[replicas]
    ttft = res.records["ttft_s"].to_numpy()
    p50, p90, p99 = (float(np.quantile(ttft, q)) for q in (0.5, 0.9, 0.99))
    return SizedTtft(replicas=int(replicas), meets=meets, slo_p90_s=float(slo_p90_s),
                     ttft_p50_s=p50, ttft_p90_s=p90, ttft_p99_s=p99, summary=res.summary_dict,
                     records=res.records)
