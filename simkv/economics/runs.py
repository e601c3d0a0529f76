"""A bill's cache runs: the engine over a trace's eligible requests, outcomes kept on disk.

:meth:`simkv.economics.context.BillContext.run` streams the requests at or above a book's
minimum prompt through the cache engine (:class:`Eligible`) and spills each request's outcome
in request order (:class:`Outcomes`), zeros for the requests below the minimum, so the spilled
columns line up with the trace's and a pass reads any chunk of them back (:meth:`CacheRun.chunk`,
:class:`View`).
"""

from __future__ import annotations

import itertools
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from simkv.cache import CacheConfig
from simkv.economics.requests import BillTrace, Columns, eligible_threshold
from simkv.economics.spill import Spill
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, eq=False)
class RunChunk:
    """A cache run's outcomes for one chunk of requests (see :class:`CacheRun`)."""

    eligible: np.ndarray
    hit_tokens: np.ndarray
    hit_blocks: np.ndarray
    touched_cached_blocks: np.ndarray
    blocks: np.ndarray


@dataclass(frozen=True, eq=False)
class CacheRun:
    """One engine run mapped back onto every request of the full trace, kept on disk.

    Per request (:meth:`chunk`): ``eligible`` marks requests at or above the book's minimum
    prompt (the others bypass the cache); ``hit_tokens`` are the reused tokens (prefix hit, or
    chunk hits net of blending), ``hit_blocks`` the blocks read from the cache,
    ``touched_cached_blocks`` the blocks that were already cached when touched (so ``blocks -
    touched_cached_blocks`` were written).  The three outcomes are spilled in request order
    (:class:`simkv.economics.spill.Spill`, 24 bytes a request on disk, nothing in memory) and
    dropped from the spill when the run is garbage-collected.
    """

    cfg: CacheConfig
    min_tokens: int
    first_fill_s: float | None
    source: BillTrace = field(repr=False)
    #: spilled column of each outcome
    columns: dict[str, str] = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        spill = self.source.spill
        weakref.finalize(self, _drop_columns, spill, tuple(self.columns.values()))

    @property
    def threshold(self) -> int:
        return eligible_threshold(self.min_tokens)

    def chunk(self, cols: Columns) -> RunChunk:
        """The outcomes of the requests ``cols`` covers."""
        a, b = cols.a, cols.a + cols.n
        read = self.source.spill.read
        return RunChunk(eligible=cols.input_tokens >= self.threshold,
                        hit_tokens=read(self.columns["hit_tokens"], a, b),
                        hit_blocks=read(self.columns["hit_blocks"], a, b),
                        touched_cached_blocks=read(self.columns["touched"], a, b),
                        blocks=cols.blocks)

    def whole(self, name: str) -> np.ndarray:
        """One outcome (or ``eligible``) for every request at once (tests, small traces)."""
        n = self.source.facts.n_requests
        c = self.chunk(self.source.columns(0, n))
        return getattr(c, name)

    @property
    def rows(self) -> np.ndarray:
        """Indices of the eligible requests (sorted; the whole trace's: tests, small traces)."""
        return np.flatnonzero(self.whole("eligible"))

    @property
    def sub_trace(self) -> Trace:
        """The eligible requests as one trace, read from the source (for tests and small
        traces: it holds their blocks)."""
        return self.source.select(self.rows)


def _drop_columns(spill: Spill, names: tuple[str, ...]) -> None:
    for name in names:
        spill.drop(name)


@dataclass(frozen=True, eq=False)
class View:
    """One chunk of a bill's trace as a price book's pricing sees it: the per-request columns
    (``cols``), the chunk's blocks when the pass asked for them (``trace``), and any cache
    run's outcomes for these requests (:meth:`run`)."""

    cols: Columns
    trace: Trace | None = None

    @property
    def a(self) -> int:
        return self.cols.a

    @property
    def n(self) -> int:
        return self.cols.n

    @property
    def input_tokens(self) -> np.ndarray:
        return self.cols.input_tokens

    def run(self, run: CacheRun) -> RunChunk:
        return run.chunk(self.cols)


@dataclass(frozen=True, eq=False)
class Eligible(TraceSource):
    """The requests of a bill's trace with at least ``min_tokens`` input tokens, as a stream:
    one chunk of them is read and copied at a time (``BillTrace.eligible_chunks``).  Each
    chunk handed out is noted in ``pending`` (first request, eligible rows) for the engine's
    sink, which gets that chunk's records next (:func:`simulate_stream` feeds a chunk, then
    hands its records to the sink, in order)."""

    whole: BillTrace | None = None
    min_tokens: int = 0
    pending: deque = field(default_factory=deque)

    def _raw_chunks(self, chunk_requests, columns, ids_as_keys):
        for a, idx, chunk in self.whole.eligible_chunks(self.min_tokens):
            self.pending.append((a, idx))
            yield chunk


class Outcomes:
    """The engine's per-request outcomes a bill reads, spilled in request order: each chunk's
    records go to their requests' rows and the rows in between (below the minimum) get zeros,
    so the spilled columns line up with the trace's requests.  Results equal ``simulate``'s on
    those requests for any chunk size (``tests/unit/test_streaming.py``,
    ``tests/unit/test_bill_sums.py``)."""

    _ids = itertools.count()

    def __init__(self, spill: Spill, pending: deque, chunk_reuse: bool) -> None:
        self.spill, self.pending, self.chunk_reuse = spill, pending, chunk_reuse
        k = next(self._ids)
        self.columns = {name: f"run{k}.{name}" for name in ("hit_tokens", "hit_blocks", "touched")}
        self.written = 0
        self.first_fill_s: float | None = None
        #: called with the requests done after each chunk (progress)
        self.on_rows = None

    def _zeros(self, n: int) -> None:
        if n > 0:
            for col in self.columns.values():
                self.spill.append(col, np.zeros(n, dtype=np.int64))
            self.written += n

    def add(self, frame: pd.DataFrame) -> None:
        a, idx = self.pending.popleft()
        assert len(idx) == len(frame), "the engine's records do not match its chunk"
        self._zeros(a - self.written)
        k = int(idx[-1]) + 1
        values = {"hit_tokens": frame["reused_tokens"],
                  "hit_blocks": frame["hit_blocks" if self.chunk_reuse else "prefix_hit_blocks"],
                  "touched": frame["hit_blocks"]}
        for name, col in self.columns.items():
            full = np.zeros(k, dtype=np.int64)
            full[idx] = values[name].to_numpy()
            self.spill.append(col, full)
        self.written += k
        if self.on_rows is not None:
            self.on_rows(a + k)
        if self.first_fill_s is None:
            ev = np.flatnonzero(frame["evictions"].to_numpy() > 0)
            if len(ev):
                self.first_fill_s = float(frame["arrival_s"].to_numpy()[ev[0]])

    def finish(self, n_requests: int) -> None:
        assert not self.pending, "the engine left a chunk without records"
        self._zeros(n_requests - self.written)
