"""The explorer's tables: the exact capacity x TTL grid at 1x, 2x and 5x traffic, the monthly
token volumes, and TTFT at replica counts sized to the load.

Why here: the decision cards and the in-page explorer read only these tables (plain
DataFrames), so whichever stage produces them (today this module, called by the decision
section; later a registered pipeline stage) the cards and the page stay the same.

Columns (one row per workload x model x traffic multiplier x ...):

``grid``    workload, model, traffic, capacity_bytes (NaN = unlimited), ttl_s (NaN = no TTL),
            prefix_token_hit_ratio (exact LRU, ``simkv.sizing.lru_grid``, whole window)
``volume``  workload, model, traffic, input_tokens, window_s, input_tokens_per_month,
            working_set_bytes, block_tokens, block_bytes (KV bytes of one block of the model)
``ttft``    workload, model, traffic, setup, capacity_bytes (0 = no cache, NaN = unlimited),
            prefix_token_hit_ratio, gpu, tier, routing, hbm_bytes_per_replica, slo_p90_s, replicas,
            meets, ttft_p50_s, ttft_p90_s
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simkv.cache.config import CacheConfig
from simkv.cache.working_set import WorkingSet
from simkv.cache.working_set import working_set_bytes as stream_working_set_bytes
from simkv.economics.growth import GrownSource
from simkv.economics.requests import BillTrace
from simkv.latency.slo import DEFAULT_TTFT_SLO_P90_S
from simkv.models.geometry import catalogue_names, get_model
from simkv.report.explorer.frames import TRAFFIC, ExplorerTables
from simkv.report.explorer.money import TierPrice, tokens_per_month
from simkv.report.explorer.replicas import sized_ttft
from simkv.sizing import lru_grid
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource

#: the explorer's TTLs; 15 minutes is always there ("what if the TTL were 15 minutes")
TTLS_S = (60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, None)
TTLS_QUICK_S = (300.0, 900.0, 3600.0, None)
N_CAPS, N_CAPS_QUICK = 14, 8
#: smallest grid capacity as a share of the 1x working set; the largest is the 5x working set
MIN_FRACTION = 1.0 / 256
#: where TTFT is predicted (as in the TTFT section): a shared bucket on the remote tier behind
#: an HBM prefix cache of this share of the 1x working set per replica
GPU, BUCKET_TIER, HBM_SHARE = "H100", "remote", 0.05
#: routing as the self-hosted fleets route (simkv.economics.fleet): with a cache, requests go
#: where their prefix is; without one, by load (prefix affinity would only concentrate load)
ROUTING_CACHED, ROUTING_NO_CACHE = "prefix_aware", "least_loaded"


def catalogue_block_bytes(block_tokens: int) -> dict[str, int]:
    """KV bytes of one ``block_tokens`` block for every catalogue model (the explorer's model
    choice: an LRU over blocks of equal size hits the same at capacity x its block size)."""
    return {name: int(get_model(name).block_bytes(block_tokens)) for name in catalogue_names()}


def working_set_bytes(trace: Trace | TraceSource) -> int:
    """KV bytes of every distinct block of ``trace`` (each at its model's size), streamed."""
    return stream_working_set_bytes(trace)


@dataclass(frozen=True)
class _Volume:
    """One pass's totals over a (grown) stream: what the ``volume`` table needs."""

    input_tokens: int
    window_s: float
    working_set_bytes: int
    block_tokens: int


def _volume(source: TraceSource) -> _Volume:
    """Input tokens, first-to-last arrival and working set of ``source`` in one streamed pass
    (the whole-trace ``a[-1] - a[0]``, ``input_tokens.sum()`` and working set)."""
    ws = WorkingSet()
    tokens, n, first_s, last_s, block_tokens = 0, 0, 0.0, 0.0, 0
    for chunk in source.chunks(columns=(), ids_as_keys=True):  # hashes compared only
        block_tokens = int(chunk.block_tokens)
        if not chunk.n_requests:
            continue
        if n == 0:
            first_s = float(chunk.arrival_s[0])
        last_s = float(chunk.arrival_s[-1])
        n += chunk.n_requests
        tokens += int(chunk.input_tokens.sum())
        ws.add(chunk)
    return _Volume(tokens, last_s - first_s if n > 1 else 0.0, ws.bytes, block_tokens)


def grown_sources(source: TraceSource, factors: Sequence[int]) -> list[tuple[int, TraceSource]]:
    """(factor, ``grow(trace, factor)`` as a stream) for each factor: the copies spaced by the
    mean inter-arrival gap, as ``grow`` spaces them by default (factor 1: the trace itself)."""
    if all(g == 1 for g in factors):
        return [(g, source) for g in factors]
    base = BillTrace(source)
    facts = base.facts
    gap = facts.duration_s / max(facts.n_requests - 1, 1)
    return [(g, source if g == 1 else GrownSource(base=base, factor=g, spacing_s=gap))
            for g in factors]


def capacities(ws_bytes: int, tiers: Sequence[TierPrice], n: int) -> list[int]:
    """Geometric capacities from ws/256 to 5 x ws (every traffic level), plus every tier's."""
    top = max(1.0, float(ws_bytes) * max(TRAFFIC))
    geo = np.geomspace(max(1.0, ws_bytes * MIN_FRACTION), top, n).astype(np.int64)
    tier_caps = [int(t.capacity_bytes) for t in tiers if t.capacity_bytes > 0]
    return sorted({int(c) for c in geo} | set(tier_caps))


def _ttft_rows(name: str, model: str, g: int, trace: TraceSource, ws: int, tiers: Sequence[TierPrice],
               slo_s: float) -> list[dict]:
    hbm = CacheConfig(capacity_bytes=max(1, int(ws * HBM_SHARE)))
    setups = [("no cache", 0.0, CacheConfig(capacity_blocks=0), "hbm", None, ROUTING_NO_CACHE)]
    setups += [(t.name, float(t.capacity_bytes), CacheConfig(capacity_bytes=int(t.capacity_bytes)),
                BUCKET_TIER, hbm, ROUTING_CACHED) for t in tiers if t.capacity_bytes > 0]
    rows = []
    for label, cap, cfg, tier, front, routing in setups:
        s = sized_ttft(trace, cfg, slo_p90_s=slo_s, gpu=GPU, tier=tier, hbm_cache=front,
                       routing=routing)
        rows.append({"workload": name, "model": model, "traffic": g, "setup": label,
                     "capacity_bytes": cap,
                     "prefix_token_hit_ratio": float(s.summary.get("prefix_token_hit_ratio") or 0.0),
                     "gpu": GPU, "tier": tier, "routing": routing,
                     "hbm_bytes_per_replica": 0.0 if front is None else float(hbm.capacity_bytes),
                     "slo_p90_s": slo_s, "replicas": s.replicas, "meets": s.meets,
                     "ttft_p50_s": s.ttft_p50_s, "ttft_p90_s": s.ttft_p90_s})
    return rows


def explorer_tables(pairs: Sequence[tuple[str, str, Trace | TraceSource]], tiers: Sequence[TierPrice], *,
                    quick: bool, days_per_month: float,
                    slo_p90_s: float = DEFAULT_TTFT_SLO_P90_S) -> ExplorerTables:
    """Every table for (workload, model, single-model trace) ``pairs``; each trace (in memory
    or a stream) and its growth copies (:class:`~simkv.economics.growth.GrownSource`, equal to
    ``grow``) are read chunk by chunk."""
    ttls = list(TTLS_QUICK_S if quick else TTLS_S)
    grids, vols, ttfts = [], [], []
    for name, model, trace in pairs:
        source = TraceSource.of(trace)
        ws = working_set_bytes(source)
        caps = capacities(ws, tiers, N_CAPS_QUICK if quick else N_CAPS)
        for g, tr in grown_sources(source, TRAFFIC):
            frame = lru_grid(tr, capacities_bytes=caps + [None], ttls_s=ttls)
            grids.append(pd.DataFrame({
                "workload": name, "model": model, "traffic": g,
                "capacity_bytes": frame["capacity_bytes"].astype("float64"),
                "ttl_s": frame["ttl_s"].astype("float64"),
                "prefix_token_hit_ratio": frame["prefix_token_hit_ratio"].astype("float64")}))
            v = _volume(tr)
            vols.append({"workload": name, "model": model, "traffic": g,
                         "input_tokens": v.input_tokens, "window_s": v.window_s,
                         "input_tokens_per_month": tokens_per_month(v.input_tokens, v.window_s,
                                                                    days_per_month),
                         "working_set_bytes": v.working_set_bytes,
                         "block_tokens": v.block_tokens,
                         "block_bytes": int(get_model(model).block_bytes(v.block_tokens))})
            ttfts += _ttft_rows(name, model, g, tr, ws, tiers, slo_p90_s)
    return ExplorerTables(pd.concat(grids, ignore_index=True), pd.DataFrame(vols),
                          pd.DataFrame(ttfts))
