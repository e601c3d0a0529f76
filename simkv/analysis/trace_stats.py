"""Trace statistics: size, duration, infinite-cache hit ratios and reuse times, streamed.

The trace is read chunk by chunk (``simkv.trace.stream``); what carries over is per unique
block (its dense id and the time it was last touched) and per unique session (an id map), so
memory is that state plus one chunk, whatever the number of requests.  An unlimited cache
hits exactly the blocks seen before, so its hit ratios come from the id stream directly.
Reuse-time percentiles are exact (``simkv.analysis.quantiles``: radix selection, a few more
passes over the file instead of holding every reuse time).  It sits above ``simkv.trace`` and
``simkv.cache`` (it uses their streams) rather than inside the trace package.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from simkv.analysis.quantiles import ExactPercentiles
from simkv.cache.kernels import prefix_runs
from simkv.cache.stream import BlockStream
from simkv.idmap import IdMap
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource

PERCENTS = (50, 90, 99)


@numba.njit(cache=True)
def _reuse_times(ids, last, req_offsets, req_time):  # pragma: no cover - compiled
    """Per block access: time since the same block was last touched (-1 on first touch);
    ``last`` (per object, -1 unseen) carries over from chunk to chunk."""
    out = np.full(ids.shape[0], -1.0)
    for r in range(req_offsets.shape[0] - 1):
        t = req_time[r]
        for j in range(req_offsets[r], req_offsets[r + 1]):
            o = ids[j]
            if last[o] >= 0.0:
                out[j] = t - last[o]
            last[o] = t
    return out


class _ReuseClock:
    """Per object: when it was last touched, grown as objects appear."""

    def __init__(self) -> None:
        self.blocks = BlockStream()
        self.last = np.full(1024, -1.0)

    def feed(self, chunk: Trace):
        stream = self.blocks.feed(chunk)
        if stream.n_objects > self.last.shape[0]:
            grown = np.full(max(stream.n_objects, 2 * self.last.shape[0]), -1.0)
            grown[:self.last.shape[0]] = self.last
            self.last = grown
        rt = _reuse_times(stream.ids, self.last, stream.req_offsets, stream.req_time_s)
        return stream, rt


def reuse_times_s(trace: Trace) -> np.ndarray:
    """Reuse time of every block access of an in-memory trace in seconds (-1 for a first access)."""
    return _ReuseClock().feed(trace)[1]


class _Totals:
    """The sums and firsts/lasts of one pass (integers, so chunking cannot change them)."""

    def __init__(self) -> None:
        self.requests = self.accesses = self.input_tokens = self.output_tokens = 0
        self.hits = self.lead_tokens = 0
        self.first_s = self.last_s = 0.0
        self.first: Trace | None = None
        self.sessions = IdMap()
        self.has_sessions = False

    def add(self, chunk: Trace, seen: np.ndarray) -> None:
        if self.first is None:
            self.first = chunk
        if chunk.n_requests:
            if not self.requests:
                self.first_s = float(chunk.arrival_s[0])
            self.last_s = float(chunk.arrival_s[-1])
        self.requests += chunk.n_requests
        self.accesses += chunk.n_block_accesses
        self.input_tokens += int(chunk.input_tokens.sum())
        self.output_tokens += int(chunk.output_tokens.sum())
        hits, lead = prefix_runs(seen, chunk.block_offsets)
        n_blocks = np.diff(chunk.block_offsets)
        self.hits += int(hits.sum())
        self.lead_tokens += int(np.where(lead == n_blocks, chunk.input_tokens,
                                         lead * chunk.block_tokens).sum())
        sessions = chunk.session_ids[chunk.session_ids >= 0]
        if sessions.size:
            self.has_sessions = True
            self.sessions.map(sessions.view(np.uint64))


def trace_stats(trace: Trace | TraceSource | str | Path, chunk_requests: int | None = None,
                format: str | None = None) -> dict:
    """Summary statistics, including what an unlimited cache would hit, over the stream."""
    source = TraceSource.of(trace, format)
    totals, clock, pct = _Totals(), _ReuseClock(), ExactPercentiles(PERCENTS)
    # only equality of chained hashes matters here: a reader's dense ids may stand in
    for chunk in source.chunks(chunk_requests, ids_as_keys=True):
        stream, rt = clock.feed(chunk)
        totals.add(chunk, stream.seen_before())
        pct.feed(rt[rt >= 0])
    while not pct.finish_pass():  # the exact percentiles need another look at the reuse times
        again = _ReuseClock()
        for chunk in source.chunks(chunk_requests, columns=(), ids_as_keys=True):
            rt = again.feed(chunk)[1]
            pct.feed(rt[rt >= 0])
    first = totals.first
    if first is None:
        first = source.load()  # a stream of no chunks: the header still names block size, models
    inp, acc = totals.input_tokens, totals.accesses
    values = pct.result()
    return {
        "requests": totals.requests,
        "duration_s": float(totals.last_s - totals.first_s) if totals.requests else 0.0,
        "input_tokens": inp,
        "output_tokens": totals.output_tokens,
        "block_tokens": first.block_tokens,
        "block_accesses": acc,
        "unique_blocks": int(clock.blocks.n_objects),
        "sessions": int(totals.sessions.n_ids) if totals.has_sessions else None,
        "models": list(first.models),
        "infinite_block_hit_ratio": float(totals.hits / acc) if acc else 0.0,
        "infinite_prefix_token_hit_ratio": float(totals.lead_tokens / inp) if inp else 0.0,
        **{f"reuse_time_p{p}_s": values[p] for p in PERCENTS},
        "has_tags": first.block_tags is not None,
        "has_content_hashes": first.content_hashes is not None,
    }
