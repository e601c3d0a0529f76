"""Traffic growth: ``g`` copies of a trace's sessions with fresh ids, interleaved in time.

Growth is modelled as more users with their own content: copy ``k`` of every request gets
fresh block and content hashes (so copies share nothing, not even a system prompt) and fresh
session ids, and arrives ``k / g`` of the mean inter-arrival gap after its original.  Arrival
density and working set both grow ``g``-fold; this is the conservative reading (shared system
prompts would make real growth cheaper to cache).  Compressing the time axis instead would
leave an LRU bucket's hits unchanged, so it cannot move a capacity choice.
"""

from __future__ import annotations

import numpy as np

from simkv.errors import InputError
from simkv.hashing import growth_rehash
from simkv.trace.model import NO_ID, Trace


def spacing_within(trace: Trace, boundary_s: float) -> float:
    """A copy spacing that keeps every copy on its original's side of ``boundary_s`` (a billed
    window's start), so a grown trace bills exactly the copies of the billed requests; no wider
    than the mean inter-arrival gap."""
    gap = trace.duration_s / max(trace.n_requests - 1, 1)
    before = trace.arrival_s[trace.arrival_s < boundary_s]
    if len(before) == 0:
        return gap
    return float(min(gap, boundary_s - float(before.max())))


def grow(trace: Trace, factor: int, *, spacing_s: float | None = None) -> Trace:
    """``factor`` interleaved copies of ``trace`` with fresh hashes and session ids; copy ``k``
    arrives ``k / factor x spacing_s`` after its original (always less than ``spacing_s``)."""
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise InputError(f"growth factors must be whole numbers >= 1 (copies of the traffic), got "
                         f"{factor!r}", where="--growth")
    g = int(factor)
    if g == 1:
        return trace
    n = trace.n_requests
    gap = trace.duration_s / max(n - 1, 1) if spacing_s is None else float(spacing_s)
    arrival = np.concatenate([trace.arrival_s + k * gap / g for k in range(g)])
    order = np.argsort(arrival, kind="stable")
    max_sess = int(trace.session_ids.max(initial=0)) + 1
    sess = np.concatenate([np.where(trace.session_ids == NO_ID, NO_ID, trace.session_ids + k * max_sess)
                           for k in range(g)])
    lengths = np.diff(trace.block_offsets)
    hashes = [growth_rehash(trace.block_hashes, k) for k in range(g)]
    content = (None if trace.content_hashes is None
               else [growth_rehash(trace.content_hashes, k) for k in range(g)])
    starts = np.concatenate([trace.block_offsets[:-1] + k * len(trace.block_hashes) for k in range(g)])
    all_len = np.tile(lengths, g)[order]
    src = starts[order]
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(all_len, out=offsets[1:])
    take = np.repeat(src - offsets[:-1], all_len) + np.arange(offsets[-1])
    flat_h = np.concatenate(hashes)[take]
    tags = None if trace.block_tags is None else np.tile(trace.block_tags, g)[take]
    return Trace.from_arrays(
        block_tokens=trace.block_tokens, arrival_s=arrival[order],
        input_tokens=np.tile(trace.input_tokens, g)[order],
        output_tokens=np.tile(trace.output_tokens, g)[order], block_offsets=offsets,
        block_hashes=flat_h, session_ids=sess[order],
        tenant_ids=np.tile(trace.tenant_ids, g)[order],
        model_index=np.tile(trace.model_index, g)[order], models=trace.models, block_tags=tags,
        content_hashes=None if content is None else np.concatenate(content)[take],
        meta={**trace.meta, "growth_factor": g},
    )
