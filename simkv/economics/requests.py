"""A bill's trace as per-request columns in memory plus its blocks read back chunk by chunk.

Bills need a handful of numbers per request (arrival, token counts, session, blocks per
request) for every request at once: the billed window, the bootstrap units, the per-request
dollars.  The blocks themselves (hashes, tags, content hashes: ~100 per request) are only
walked in order, by the cache engine, the storage lifetimes, Anthropic's breakpoints and
DeepSeek's prefix units, so they stay in the trace file and are read a chunk at a time
(:class:`BillTrace`).  Memory: ~50 bytes per request plus one chunk, never the trace's blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from simkv.cache.engine import resolve_trace_models
from simkv.errors import InputError
from simkv.models.geometry import ModelSpec
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource, check_chunk_requests

#: requests per chunk of every block pass unless the caller says (~50 MB of hashes at 100
#: blocks per request)
CHUNK_REQUESTS = 1 << 16


@dataclass(frozen=True, eq=False)
class Requests:
    """The per-request columns of a trace (the names and meanings of :class:`Trace`'s)."""

    block_tokens: int
    arrival_s: np.ndarray
    session_ids: np.ndarray
    tenant_ids: np.ndarray
    model_index: np.ndarray
    models: tuple[str, ...]
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    block_offsets: np.ndarray
    has_block_tags: bool
    has_content_hashes: bool

    @property
    def n_requests(self) -> int:
        return len(self.arrival_s)

    @property
    def n_block_accesses(self) -> int:
        return int(self.block_offsets[-1])

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if self.n_requests else 0.0

    @property
    def has_models(self) -> bool:
        return bool(self.models) and bool(np.all(self.model_index >= 0))


_COLUMNS = ("arrival_s", "session_ids", "tenant_ids", "model_index", "input_tokens",
            "output_tokens")


class BillTrace:
    """A trace source (file or in-memory trace) read for bills: :attr:`requests` once, then
    the blocks again for each block pass (``chunks``, ``eligible_chunks``, ``select``).

    ``model`` is attached to every chunk as :func:`resolve_trace_models` attaches it to a
    whole trace.  Every pass reads the same consecutive chunks of ``chunk_requests`` requests
    (a pass's result does not depend on it: the tests run 1, 7, 4096 and the whole trace).
    """

    def __init__(self, source: Trace | TraceSource, model: str | ModelSpec | None = None,
                 chunk_requests: int | None = None) -> None:
        self.source = TraceSource.of(source)
        self.model = model
        self.chunk_requests = check_chunk_requests(chunk_requests) or CHUNK_REQUESTS
        self.requests = self._read_requests()

    def chunks(self, columns: tuple[str, ...] | None = None) -> Iterator[tuple[int, Trace]]:
        """(index of its first request, chunk) over the whole trace, in order."""
        a = 0
        for chunk in self.source.chunks(self.chunk_requests, columns):
            yield a, resolve_trace_models(chunk, self.model)
            a += chunk.n_requests

    def eligible_chunks(self, rows: np.ndarray) -> Iterator[Trace]:
        """The requests ``rows`` (sorted indices) as chunks: one chunk's copy at a time."""
        for a, chunk in self.chunks():
            b = a + chunk.n_requests
            lo, hi = np.searchsorted(rows, [a, b])
            if hi == lo:
                continue
            yield chunk if hi - lo == b - a else chunk.select(rows[lo:hi] - a)

    def select(self, rows: np.ndarray) -> Trace:
        """The requests ``rows`` (sorted) as one trace (e.g. one hour of traffic to size a
        fleet on): only those requests' blocks are held."""
        from simkv.trace.model import concat_traces

        parts = list(self.eligible_chunks(np.asarray(rows, dtype=np.int64)))
        if not parts:
            raise ValueError("select needs at least one row")
        return parts[0] if len(parts) == 1 else concat_traces(parts)

    def _read_requests(self) -> Requests:
        cols: dict[str, list[np.ndarray]] = {k: [] for k in _COLUMNS}
        blocks: list[np.ndarray] = []
        first: Trace | None = None
        for _, chunk in self.chunks():
            if first is None:
                first = chunk
            for k in _COLUMNS:
                cols[k].append(getattr(chunk, k).copy())
            blocks.append(np.diff(chunk.block_offsets).astype(np.int64))
        if first is None:
            raise InputError("the trace has no requests", source=self.source.path)
        offsets = np.zeros(sum(len(b) for b in blocks) + 1, dtype=np.int64)
        np.cumsum(np.concatenate(blocks), out=offsets[1:])
        return Requests(block_tokens=first.block_tokens, models=tuple(first.models),
                        block_offsets=offsets, has_block_tags=first.block_tags is not None,
                        has_content_hashes=first.content_hashes is not None,
                        **{k: np.concatenate(v) for k, v in cols.items()})
