"""Token-seconds a TTL cache's entries live inside a billed window, walked as a stream.

An entry lives from its write until ``ttl`` after its last touch (``refresh_on_hit``), until
``ttl`` after its write (``from_write``), or, without a TTL, to the window's end; the first touch
after it has expired writes a new entry.  The accesses are read chunk by chunk (requests in
arrival order, blocks in prompt order); per key the walk carries the open entry (its start, last
touch and tokens) and adds each entry's ``tokens x time alive`` as it closes, so memory is per
unique key plus one chunk's entries, never per access or per entry.

The entries are those of the whole-trace computation it replaces (sorting every access by key
then time): a key's accesses arrive in the same order (arrival times never decrease; ties keep
the trace's order, as the stable sort did), and each entry's figure is the same element-wise
arithmetic.  They are summed as the correctly rounded sum (:class:`~simkv.economics.sums.ExactSum`,
``math.fsum``'s), so neither the chunking nor the order the entries close in changes a bit.
"""

from __future__ import annotations

from collections.abc import Iterator

import numba
import numpy as np

from simkv.economics.sums import ExactSum
from simkv.idmap import IdMap
from simkv.trace.model import Trace

#: requests per chunk of the walk
CHUNK_REQUESTS = 1 << 16
NO_TTL, REFRESH, FROM_WRITE = 0, 1, 2


@numba.njit(cache=True)
def _walk(ids, times, tokens, mode, ttl, has, start, last, tok, e_start, e_end,
          e_tok):  # pragma: no cover - compiled
    """Advance every key's open entry over one chunk's accesses; returns the entries closed."""
    n = 0
    for i in range(ids.shape[0]):
        d = ids[i]
        t = times[i]
        if not has[d]:
            has[d] = True
            start[d] = t
            tok[d] = tokens[i]
            last[d] = t
            continue
        if mode == REFRESH:
            if t - last[d] >= ttl:
                e_start[n], e_end[n], e_tok[n] = start[d], last[d] + ttl, tok[d]
                n += 1
                start[d] = t
                tok[d] = tokens[i]
            last[d] = t
        elif mode == FROM_WRITE:
            if t >= start[d] + ttl:
                e_start[n], e_end[n], e_tok[n] = start[d], start[d] + ttl, tok[d]
                n += 1
                start[d] = t
                tok[d] = tokens[i]
    return n


class _State:
    """Per key: whether an entry is open, its start, last touch and tokens (grown by doubling)."""

    def __init__(self) -> None:
        self.has = np.zeros(0, dtype=np.bool_)
        self.start = np.zeros(0)
        self.last = np.zeros(0)
        self.tok = np.zeros(0)

    def reserve(self, n: int) -> None:
        if n <= len(self.has):
            return
        size = max(n, 2 * len(self.has), 1024)
        for name in ("has", "start", "last", "tok"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)


def eligible_chunks(trace: Trace, rows: np.ndarray) -> Iterator[Trace]:
    """The requests ``rows`` (sorted) of ``trace`` as chunks: a copy of one chunk at a time."""
    for a in range(0, trace.n_requests, CHUNK_REQUESTS):
        b = min(a + CHUNK_REQUESTS, trace.n_requests)
        lo, hi = np.searchsorted(rows, [a, b])
        if hi == lo:
            continue
        chunk = trace.slice(a, b)
        yield chunk if hi - lo == b - a else chunk.select(rows[lo:hi] - a)


def _keys(chunk: Trace, content: bool) -> np.ndarray:
    return chunk.content_hashes if content else chunk.block_hashes


def _shared_counts(chunks, content: bool, idmap: IdMap) -> np.ndarray:
    """Per key: how many requests hold it (a request lies in one chunk, so counts add up)."""
    n_req = np.zeros(0, dtype=np.int64)
    for chunk in chunks():
        ids = idmap.map(_keys(chunk, content))
        if idmap.n_ids > len(n_req):
            grown = np.zeros(max(idmap.n_ids, 2 * len(n_req)), dtype=np.int64)
            grown[:len(n_req)] = n_req
            n_req = grown
        req = chunk.request_of_block()
        pairs = np.unique(np.stack([ids, req]), axis=1)
        np.add.at(n_req, pairs[0], 1)
    return n_req


def token_seconds(chunks, *, content: bool, ttl_s: float | None, ttl_mode: str, lo: float,
                  hi: float, shared_only: bool = False) -> float:
    """Sum over entries of tokens x time alive within [lo, hi] (see the module docstring).

    ``chunks``: a callable returning a fresh iterator of the chunks (two passes with
    ``shared_only``, which counts only keys held by two or more requests)."""
    idmap = IdMap()
    n_req = _shared_counts(chunks, content, idmap) if shared_only else None
    mode = NO_TTL if ttl_s is None else (REFRESH if ttl_mode == "refresh_on_hit" else FROM_WRITE)
    ttl = 0.0 if ttl_s is None else float(ttl_s)
    state = _State()
    total = ExactSum()
    for chunk in chunks():
        ids = idmap.map(_keys(chunk, content))
        times = np.repeat(chunk.arrival_s, np.diff(chunk.block_offsets))
        tokens = chunk.block_token_counts().astype(np.float64)
        if n_req is not None:
            keep = n_req[ids] >= 2
            ids, times, tokens = ids[keep], times[keep], tokens[keep]
        state.reserve(idmap.n_ids)
        m = len(ids)
        e_start, e_end, e_tok = np.empty(m), np.empty(m), np.empty(m)
        n = _walk(ids, times.astype(np.float64), tokens, mode, ttl, state.has, state.start,
                  state.last, state.tok, e_start, e_end, e_tok)
        total.add(_lived(e_start[:n], e_end[:n], e_tok[:n], lo, hi))
    open_ids = np.flatnonzero(state.has)
    s = state.start[open_ids]
    end = {NO_TTL: np.full(len(open_ids), hi), REFRESH: state.last[open_ids] + ttl,
           FROM_WRITE: s + ttl}[mode]
    total.add(_lived(s, end, state.tok[open_ids], lo, hi))
    return total.value


def _lived(starts: np.ndarray, ends: np.ndarray, tokens: np.ndarray, lo: float,
           hi: float) -> np.ndarray:
    """Each entry's tokens x seconds alive within [lo, hi]."""
    return tokens * np.clip(np.minimum(ends, hi) - np.maximum(starts, lo), 0.0, None)
