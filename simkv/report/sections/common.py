"""Helpers the sections share: per-workload engine runs (memoized), working-set sizes."""

from __future__ import annotations

import numpy as np

from simkv.cache import CacheConfig, SimResult, simulate
from simkv.cache.config import DEFAULT_BLEND_RECOMPUTE_SHARE
from simkv.cache.engine import block_bytes_per_access
from simkv.cache.stream import dense_block_ids
from simkv.report.model import ReportContext, WorkloadInput

#: the share the report uses: the CLI's default for ``--blend-recompute-share``
BLEND_RECOMPUTE_SHARE = DEFAULT_BLEND_RECOMPUTE_SHARE


def unlimited(ctx: ReportContext, w: WorkloadInput, reuse: str = "prefix") -> SimResult:
    """An unlimited, TTL-free LRU cache over the workload (the most any cache can reuse)."""
    key = f"unlimited:{reuse}:{w.name}"
    if key not in ctx.cache:
        cfg = CacheConfig(reuse=reuse,
                          blend_recompute_share=BLEND_RECOMPUTE_SHARE if reuse == "chunk" else 0.0)
        ctx.cache[key] = simulate(w.trace, cfg)
    return ctx.cache[key]


def working_set_bytes(ctx: ReportContext, w: WorkloadInput) -> int:
    """Bytes of KV of every distinct block of the trace (each at its own model's size)."""
    key = f"ws:{w.name}"
    if key not in ctx.cache:
        ids, n_obj = dense_block_ids(w.trace)
        weight = np.zeros(n_obj, dtype=np.int64)
        weight[ids] = block_bytes_per_access(w.trace)
        ctx.cache[key] = int(weight.sum())
    return ctx.cache[key]


def window_s(w: WorkloadInput) -> float:
    a = w.trace.arrival_s
    return float(a[-1] - a[0]) if len(a) > 1 else 0.0
