"""A bill's trace: a few facts in memory, per-request columns on disk, blocks in the file.

Bills need a handful of numbers per request (arrival, input tokens, session, blocks per
request) in several passes: the billed window, the bootstrap units, every book's dollars.
They are read from the source once and spilled in request order (:mod:`simkv.economics.spill`),
then read back a chunk at a time (:meth:`BillTrace.columns`).  The blocks themselves (hashes,
tags, content hashes: ~100 per request) are only walked in order, by the cache engine, the
storage lifetimes, Anthropic's breakpoints and DeepSeek's prefix units, so they stay in the
trace file and are read a chunk at a time (:meth:`BillTrace.chunks`).  Memory: the facts
(:class:`RequestFacts`) plus one chunk, never a column of the whole trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simkv.cache.engine import resolve_trace_models
from simkv.economics.spill import Spill
from simkv.errors import InputError
from simkv.models.geometry import ModelSpec
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource, check_chunk_requests

#: requests per chunk of every pass unless the caller says (~50 MB of hashes at 100 blocks
#: per request)
CHUNK_REQUESTS = 1 << 16
#: the spilled per-request columns (int64 but ``arrival_s``, float64)
COLUMNS = ("arrival_s", "session_ids", "input_tokens", "blocks")


def eligible_threshold(min_tokens: int) -> int:
    """The fewest input tokens a request needs to use a book's cache (at least one)."""
    return max(int(min_tokens), 1)


@dataclass(frozen=True)
class RequestFacts:
    """What a bill needs of the whole trace at once: counts, the first and last arrival,
    the largest session id (growth copies offset theirs past it), its shape."""

    block_tokens: int
    models: tuple[str, ...]
    has_block_tags: bool
    has_content_hashes: bool
    #: every request names a model
    has_models: bool
    n_requests: int
    n_block_accesses: int
    first_arrival_s: float
    last_arrival_s: float
    max_session_id: int

    @property
    def duration_s(self) -> float:
        return self.last_arrival_s - self.first_arrival_s if self.n_requests else 0.0


@dataclass(frozen=True, eq=False)
class Columns:
    """Rows ``[a, a + n)`` of a bill's per-request columns."""

    a: int
    arrival_s: np.ndarray
    session_ids: np.ndarray
    input_tokens: np.ndarray
    blocks: np.ndarray

    @property
    def n(self) -> int:
        return len(self.arrival_s)


class BillTrace:
    """A trace source (file or in-memory trace) read for bills: its facts and per-request
    columns once (spilled to disk), then the blocks again for each block pass.

    ``model`` is attached to every chunk as :func:`resolve_trace_models` attaches it to a
    whole trace.  Every pass reads the same consecutive chunks of ``chunk_requests`` requests
    (a pass's result does not depend on it: the tests run 1, 7, 4096 and the whole trace).
    ``spill_dir``: where the columns go (default ``$TMPDIR``).
    """

    def __init__(self, source: Trace | TraceSource, model: str | ModelSpec | None = None,
                 chunk_requests: int | None = None, *, spill_dir: str | Path | None = None) -> None:
        self.source = TraceSource.of(source)
        self.model = model
        self.chunk_requests = check_chunk_requests(chunk_requests) or CHUNK_REQUESTS
        self.spill = Spill(spill_dir)
        self.facts = self._read_facts()

    # ------------------------------------------------------------------ blocks (the source)
    def chunks(self, columns: tuple[str, ...] | None = None) -> Iterator[tuple[int, Trace]]:
        """(index of its first request, chunk) over the whole trace, in order."""
        a = 0
        for chunk in self.source.chunks(self.chunk_requests, columns):
            yield a, resolve_trace_models(chunk, self.model)
            a += chunk.n_requests

    def eligible_chunks(self, min_tokens: int) -> Iterator[tuple[int, np.ndarray, Trace]]:
        """(first request, eligible rows within the chunk, those requests) per chunk with any
        request of at least ``max(min_tokens, 1)`` input tokens: one chunk's copy at a time."""
        threshold = eligible_threshold(min_tokens)
        for a, chunk in self.chunks():
            idx = np.flatnonzero(chunk.input_tokens >= threshold)
            if len(idx):
                yield a, idx, chunk if len(idx) == chunk.n_requests else chunk.select(idx)

    def select(self, rows: np.ndarray) -> Trace:
        """The requests ``rows`` (sorted) as one trace (e.g. one hour of traffic to size a
        fleet on): only those requests' blocks are held."""
        from simkv.trace.model import concat_traces

        rows = np.asarray(rows, dtype=np.int64)
        parts = []
        for a, chunk in self.chunks():
            lo, hi = np.searchsorted(rows, [a, a + chunk.n_requests])
            if hi > lo:
                parts.append(chunk if hi - lo == chunk.n_requests else chunk.select(rows[lo:hi] - a))
        if not parts:
            raise ValueError("select needs at least one row")
        return parts[0] if len(parts) == 1 else concat_traces(parts)

    # ------------------------------------------------------------------ columns (the spill)
    def columns(self, a: int, b: int) -> Columns:
        """Rows ``[a, b)`` of the per-request columns, read back from the spill."""
        return Columns(a, *(self.spill.read(k, a, b) for k in COLUMNS))

    def column_chunks(self, start: int = 0) -> Iterator[Columns]:
        """The per-request columns from row ``start`` on, ``chunk_requests`` rows at a time
        (aligned with :meth:`chunks`)."""
        n, step = self.facts.n_requests, self.chunk_requests
        for a in range(start - start % step, n, step):
            yield self.columns(max(a, start), min(a + step, n))

    def first_row_at(self, t_s: float) -> int:
        """The first request arriving at or after ``t_s`` (``n_requests`` when none does);
        arrivals never decrease, so the rows from it on are a suffix."""
        for c in self.column_chunks():
            if c.n and c.arrival_s[-1] >= t_s:
                return c.a + int(np.searchsorted(c.arrival_s, t_s, side="left"))
        return self.facts.n_requests

    def _read_facts(self) -> RequestFacts:
        first: Trace | None = None
        n = accesses = 0
        max_sess, has_models, first_t, last_t = -1, True, 0.0, 0.0
        hint = self.source.n_requests_hint()
        if hint:
            self.spill.check_disk(hint, len(COLUMNS), "the per-request columns")
        for _, chunk in self.chunks():
            if first is None:
                first = chunk
            k = chunk.n_requests
            if k == 0:
                continue
            blocks = np.diff(chunk.block_offsets).astype(np.int64)
            for name, values in (("arrival_s", chunk.arrival_s), ("session_ids", chunk.session_ids),
                                 ("input_tokens", chunk.input_tokens), ("blocks", blocks)):
                self.spill.append(name, np.asarray(values, dtype=np.float64 if name == "arrival_s"
                                                   else np.int64))
            if n == 0:
                first_t = float(chunk.arrival_s[0])
            last_t = float(chunk.arrival_s[-1])
            n += k
            accesses += int(chunk.block_offsets[-1])
            max_sess = max(max_sess, int(chunk.session_ids.max()))
            has_models = has_models and bool(np.all(chunk.model_index >= 0))
        if first is None:
            raise InputError("the trace has no requests", source=self.source.path)
        return RequestFacts(block_tokens=first.block_tokens, models=tuple(first.models),
                            has_block_tags=first.block_tags is not None,
                            has_content_hashes=first.content_hashes is not None,
                            has_models=bool(first.models) and has_models, n_requests=n,
                            n_block_accesses=accesses, first_arrival_s=first_t,
                            last_arrival_s=last_t, max_session_id=max_sess)
