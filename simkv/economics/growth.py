"""Traffic growth: ``g`` copies of a trace's sessions with fresh ids, interleaved in time.

Growth is modelled as more users with their own content: copy ``k`` of every request gets
fresh block and content hashes (so copies share nothing, not even a system prompt) and fresh
session ids, and arrives ``k / g`` of the mean inter-arrival gap after its original.  Arrival
density and working set both grow ``g``-fold; this is the conservative reading (shared system
prompts would make real growth cheaper to cache).  Compressing the time axis instead would
leave an LRU bucket's hits unchanged, so it cannot move a capacity choice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from simkv.economics.requests import BillTrace
from simkv.errors import InputError
from simkv.hashing import growth_rehash
from simkv.trace.model import NO_ID, Trace, concat_traces
from simkv.trace.stream import TraceSource


def spacing_within(trace: Trace | BillTrace, boundary_s: float) -> float:
    """A copy spacing that keeps every copy on its original's side of ``boundary_s`` (a billed
    window's start), so a grown trace bills exactly the copies of the billed requests; no wider
    than the mean inter-arrival gap."""
    if isinstance(trace, BillTrace):
        f = trace.facts
        gap = f.duration_s / max(f.n_requests - 1, 1)
        k = trace.first_row_at(boundary_s)  # arrivals never decrease: row k - 1 is the last before
        if k == 0:
            return gap
        return float(min(gap, boundary_s - float(trace.columns(k - 1, k).arrival_s[0])))
    gap = trace.duration_s / max(trace.n_requests - 1, 1)
    before = trace.arrival_s[trace.arrival_s < boundary_s]
    if len(before) == 0:
        return gap
    return float(min(gap, boundary_s - float(before.max())))


def check_factor(factor) -> int:
    """``factor`` as an int if it is a whole number >= 1, else InputError naming --growth."""
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise InputError(f"growth factors must be whole numbers >= 1 (copies of the traffic), got "
                         f"{factor!r}", where="--growth")
    return int(factor)


def grow(trace: Trace, factor: int, *, spacing_s: float | None = None) -> Trace:
    """``factor`` interleaved copies of ``trace`` with fresh hashes and session ids; copy ``k``
    arrives ``k / factor x spacing_s`` after its original (always less than ``spacing_s``)."""
    g = check_factor(factor)
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


@dataclass(frozen=True, eq=False)
class GrownSource(TraceSource):
    """``grow(trace, factor, spacing_s=...)`` as a stream over a bill's trace ``base``: each
    chunk of ``base`` is copied ``factor`` times and merged with the copies still due from the
    chunks before, and the requests arriving before the next chunk's first arrival are handed
    out (no later copy can arrive earlier, since a copy never arrives before its original).

    The order is :func:`grow`'s: its stable sort of the concatenated copies orders requests
    by (arrival, copy, original index), the key sorted here; arrivals, hashes and session ids
    are the same element-wise arithmetic, so the stream equals ``grow``'s trace cut into
    chunks (``tests/unit/test_bills_stream.py``).  Memory: about ``factor`` chunks."""

    base: BillTrace | None = None
    factor: int = 1
    spacing_s: float = 0.0

    def _raw_chunks(self, chunk_requests, columns, ids_as_keys):
        g, bt = self.factor, self.base
        max_sess = max(bt.facts.max_session_id, 0) + 1
        carry: tuple[Trace, np.ndarray, np.ndarray] | None = None
        chunks = bt.chunks()
        nxt = next(chunks, None)
        while nxt is not None:
            a, chunk = nxt
            nxt = next(chunks, None)
            parts = [] if carry is None else [carry]
            parts += [(_copy(chunk, k, g, self.spacing_s, max_sess),
                       np.full(chunk.n_requests, k, dtype=np.int64),
                       np.arange(a, a + chunk.n_requests, dtype=np.int64)) for k in range(g)]
            merged = concat_traces([p[0] for p in parts])
            ks, idx = np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
            order = np.lexsort((idx, ks, merged.arrival_s))
            merged, ks, idx = merged.select(order), ks[order], idx[order]
            cut = (merged.n_requests if nxt is None else
                   int(np.searchsorted(merged.arrival_s, nxt[1].arrival_s[0], side="left"))
                   if nxt[1].n_requests else 0)
            if cut:
                yield merged.slice(0, cut)
            carry = None if cut == merged.n_requests else (
                merged.slice(cut, merged.n_requests), ks[cut:], idx[cut:])


def _copy(chunk: Trace, k: int, g: int, spacing_s: float, max_sess: int) -> Trace:
    """Copy ``k`` of ``chunk`` as :func:`grow` makes it (arrival, session ids, hashes)."""
    if k == 0:
        return chunk
    sess = np.where(chunk.session_ids == NO_ID, NO_ID, chunk.session_ids + k * max_sess)
    return dataclasses.replace(
        chunk, arrival_s=chunk.arrival_s + k * spacing_s / g, session_ids=sess,
        block_hashes=growth_rehash(chunk.block_hashes, k),
        content_hashes=(None if chunk.content_hashes is None
                        else growth_rehash(chunk.content_hashes, k)))
