"""Trace statistics: size, duration, infinite-cache hit ratios and reuse times.

It runs the cache engine (an unlimited cache), so it sits above ``simkv.trace`` and
``simkv.cache`` rather than inside the trace package."""

from __future__ import annotations

import numba
import numpy as np

from simkv.cache import CacheConfig, simulate
from simkv.cache.stream import dense_block_ids
from simkv.trace.model import Trace


@numba.njit(cache=True)
def _reuse_times(ids, n_obj, req_offsets, req_time):  # pragma: no cover - compiled
    """Per block access: time since the same block was last touched (-1 on first touch)."""
    last = np.full(n_obj, -1.0)
    out = np.full(ids.shape[0], -1.0)
    for r in range(req_offsets.shape[0] - 1):
        t = req_time[r]
        for j in range(req_offsets[r], req_offsets[r + 1]):
            o = ids[j]
            if last[o] >= 0.0:
                out[j] = t - last[o]
            last[o] = t
    return out


def reuse_times_s(trace: Trace) -> np.ndarray:
    """Reuse time of every block access in seconds (-1 for a first access)."""
    ids, n_obj = dense_block_ids(trace)
    return _reuse_times(ids, n_obj, trace.block_offsets, trace.arrival_s)


def trace_stats(trace: Trace) -> dict:
    """Summary statistics, including what an unlimited cache would hit."""
    inf = simulate(trace, CacheConfig()).summary_dict
    rt = reuse_times_s(trace)
    rt = rt[rt >= 0]
    pct = {f"reuse_time_p{p}_s": (float(np.percentile(rt, p)) if rt.size else None)
           for p in (50, 90, 99)}
    sessions = trace.session_ids[trace.session_ids >= 0]
    return {
        "requests": trace.n_requests,
        "duration_s": trace.duration_s,
        "input_tokens": int(trace.input_tokens.sum()),
        "output_tokens": int(trace.output_tokens.sum()),
        "block_tokens": trace.block_tokens,
        "block_accesses": trace.n_block_accesses,
        "unique_blocks": inf["unique_blocks"],
        "sessions": int(np.unique(sessions).size) if sessions.size else None,
        "models": list(trace.models),
        "infinite_block_hit_ratio": inf["block_hit_ratio"],
        "infinite_prefix_token_hit_ratio": inf["prefix_token_hit_ratio"],
        **pct,
        "has_tags": trace.block_tags is not None,
        "has_content_hashes": trace.content_hashes is not None,
    }
