"""What every bill on a trace needs: the trace with its model, cache runs, lifetimes, window.

The trace's per-request columns and every cache run's per-request outcomes are spilled to disk
(:mod:`simkv.economics.requests`, :mod:`simkv.economics.spill`) and every pass reads them back
a chunk at a time, beside the blocks read from the source (the engine, lifetimes, breakpoints,
prefix units, a fleet's hour): memory is the per-unit sums plus one chunk, never a column of
the whole trace.

Price books describe *how* a provider caches (TTL and refresh, minimum prompt, capacity); the
cache engine (:func:`simkv.cache.simulate`) finds *which* blocks hit.  A :class:`BillContext`
runs the engine once per distinct cache semantics and shares the result between books.

Approximations (documented in docs/economics.md):

- hits are found at the trace's block granularity, then each book rounds them down to its own
  unit (128 tokens, 64 tokens, a minimum cacheable prefix);
- a request shorter than a book's minimum cacheable prompt neither reads nor writes the cache,
  so the engine runs on the requests at or above the minimum only;
- storage lifetimes (token-hours) come from the same TTL rule the engine applies: an entry
  touched at ``t`` lives until ``t + ttl`` unless touched again before then.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import numpy as np

from simkv.cache import CacheConfig
from simkv.cache.engine import simulate_stream
from simkv.economics.lifetimes import token_seconds
from simkv.economics.requests import BillTrace, Columns
from simkv.economics.runs import CacheRun, Eligible, Outcomes, View
from simkv.economics.window import WarmupSpec, Window, make_window_span
from simkv.errors import InputError
from simkv.models.geometry import ModelSpec, get_model
from simkv.trace.model import NO_ID, Trace
from simkv.trace.stream import TraceSource


@dataclass(frozen=True, eq=False)
class Billed:
    """The requests a window bills (rows ``first_row`` on: arrivals never decrease) and how
    each maps to its bootstrap unit, as :meth:`BillContext.bootstrap_units` defines units:

    - ``sessions``: a request's session, or (without one) a unit of its own, numbered
      ``-(j + 2)`` for the ``j``-th billed request; units sorted (``np.unique`` order), so the
      ``n_own`` own units come first, latest request first, then ``sessions`` (sorted);
    - time slices: ``n_slices`` equal slices of the billed window, those with requests
      (``slices``, sorted) numbered in order.
    """

    window: Window
    first_row: int
    n_billed: int
    label: str
    n_units: int
    by_session: bool
    sessions: np.ndarray
    n_own: int
    slices: np.ndarray
    n_slices: int

    def mapper(self):
        """A function of each billed chunk's columns (in order, from ``first_row``) to its
        (unit index, unit) arrays; it counts the own units as it goes."""
        seen = [0, 0]  # billed requests, own units so far

        def units_of(cols: Columns, lo: int = 0) -> tuple[np.ndarray, np.ndarray]:
            k = cols.n - lo
            j = seen[0] + np.arange(k, dtype=np.int64)
            seen[0] += k
            if self.by_session:
                sess = cols.session_ids[lo:]
                own = sess == NO_ID
                rank = seen[1] + np.cumsum(own) - 1
                seen[1] += int(own.sum())
                inverse = np.where(own, self.n_own - 1 - rank,
                                   self.n_own + np.searchsorted(self.sessions, sess))
                return inverse.astype(np.int64), np.where(own, -(j + 2), sess)
            u = self._slice_of(cols.arrival_s[lo:])
            return np.searchsorted(self.slices, u).astype(np.int64), u

        return units_of

    def _slice_of(self, arrival_s: np.ndarray) -> np.ndarray:
        w = self.window
        t = arrival_s - (w.start_s + w.warmup_s)
        width = w.length_s / self.n_slices
        return np.minimum((t // width).astype(np.int64), self.n_slices - 1)


class BillContext:
    """A trace, its model and the billing options; memoizes cache runs and lifetimes.

    ``trace``: an in-memory trace, a :class:`TraceSource` (a file read chunk by chunk) or a
    :class:`BillTrace` already read (shared by several contexts); ``chunk_requests``: the
    chunk size of every pass (results do not depend on it).  ``progress``: called as
    ``progress(what, total_requests)`` for each long pass (a cache run, a pricing pass over the
    blocks), it returns a context manager whose value is called with the requests done (the
    CLI's bar or lines; None: silent); ``activity`` prefixes ``what`` (the book being billed).
    """

    def __init__(self, trace: Trace | TraceSource | BillTrace, model: str | ModelSpec | None = None,
                 *, reuse: str = "prefix", blend_recompute_share: float = 0.0,
                 warmup: WarmupSpec | None = None, days_per_month: float = 30.0,
                 n_boot: int = 200, seed: int = 0, chunk_requests: int | None = None,
                 keep_requests: bool = True,
                 progress: Callable[[str, int | None], AbstractContextManager] | None = None
                 ) -> None:
        if reuse not in ("prefix", "chunk"):
            raise InputError(f"unknown reuse mode {reuse!r} (valid: prefix, chunk)", where="--reuse")
        if days_per_month <= 0:
            raise InputError("must be > 0", where="--days-per-month")
        if n_boot < 0:
            raise InputError("must be >= 0", where="--bootstrap")
        bt = trace if isinstance(trace, BillTrace) else BillTrace(trace, model, chunk_requests)
        facts = bt.facts
        if not facts.has_models:
            raise InputError("the trace names no model: give --model NAME", where="--model")
        if len(set(facts.models)) > 1:
            raise InputError("bills need one model per trace; this trace names several "
                             f"({', '.join(facts.models)})", where="--trace")
        if reuse == "chunk" and not facts.has_content_hashes:
            raise InputError("chunk reuse needs per-block content hashes, and this trace has none "
                             "(importers of chained hashes cannot know them); use --reuse prefix",
                             where="--reuse")
        self.source = bt
        #: what the bills need of the whole trace at once (the columns stay in ``source``)
        self.facts = facts
        self.spec = model if isinstance(model, ModelSpec) else get_model(facts.models[0])
        self.reuse = reuse
        self.blend_recompute_share = float(blend_recompute_share) if reuse == "chunk" else 0.0
        self.warmup = warmup or WarmupSpec()
        self.days_per_month = float(days_per_month)
        self.n_boot = int(n_boot)
        self.seed = int(seed)
        #: whether bills keep their per-request arrays (``Bill.detail``); the commands do not
        self.keep_requests = bool(keep_requests)
        self._runs: dict[tuple, CacheRun] = {}
        #: run keys asked for since the last :meth:`book_done`
        self._asked: set[tuple] = set()
        self._billed: Billed | None = None
        self._lifetimes: dict[tuple, float] = {}
        #: when set, every bill uses this window (e.g. to compare tiers on the same requests)
        self.fixed_window: Window | None = None
        self.progress = progress
        #: what is being billed, for the progress lines (set by compare and recommend)
        self.activity = ""

    # ------------------------------------------------------------------ engine
    def cache_config(self, **kw) -> CacheConfig:
        """A CacheConfig in this context's reuse mode."""
        return CacheConfig(reuse=self.reuse, blend_recompute_share=self.blend_recompute_share, **kw)

    def run(self, cfg: CacheConfig, min_tokens: int = 0) -> CacheRun:
        """The engine over the requests with at least ``min_tokens`` input tokens (memoized)."""
        key = (cfg, int(min_tokens))
        self._asked.add(key)
        if key in self._runs:
            return self._runs[key]
        bt = self.source
        bt.spill.check_disk(bt.facts.n_requests, 3, "each cache run's per-request outcomes")
        eligible = Eligible(whole=bt, min_tokens=int(min_tokens))
        outcomes = Outcomes(bt.spill, eligible.pending, cfg.reuse == "chunk")
        with self.pass_progress("cache run") as tick:
            outcomes.on_rows = tick
            simulate_stream(eligible, cfg, specs={self.spec.name: self.spec}, keep=False,
                            sink=outcomes.add)
        outcomes.finish(bt.facts.n_requests)
        out = CacheRun(cfg=cfg, min_tokens=int(min_tokens), first_fill_s=outcomes.first_fill_s,
                       source=bt, columns=outcomes.columns)
        self._runs[key] = out
        return out

    def forget_runs(self) -> None:
        """Drop the memoized runs (their spilled outcomes) when none will be asked again."""
        self._runs.clear()
        self._lifetimes.clear()
        self._asked.clear()

    def book_done(self) -> None:
        """Between books: keep only the runs the book just billed asked for (the next book may
        share one: Gemini's implicit cache and OpenAI's in-memory retention do), so at most two
        books' runs are held.  A run dropped here and asked again is simply re-run: the engine
        is deterministic, so no figure changes."""
        self._runs = {k: v for k, v in self._runs.items() if k in self._asked}
        self._asked = set()

    def window(self, run: CacheRun | None = None) -> Window:
        """The billed window for a run (its first eviction can lengthen the warm-up)."""
        if self.fixed_window is not None:
            return self.fixed_window
        f = self.facts
        return make_window_span(f.first_arrival_s, f.last_arrival_s, f.n_requests, self.warmup,
                                self.days_per_month, None if run is None else run.first_fill_s)

    # ------------------------------------------------------------------ passes
    def pass_progress(self, what: str) -> AbstractContextManager:
        """The progress of one long pass over the trace (a no-op without ``progress``)."""
        if self.progress is None:
            return nullcontext(lambda done: None)
        return self.progress(f"{self.activity}{what}", self.facts.n_requests)

    def views(self, start: int = 0, *, blocks: bool = False,
              columns: tuple[str, ...] | None = None) -> Iterator[View]:
        """The trace a chunk at a time, from request ``start`` on (``blocks``: from the first
        request, each chunk with its blocks, for pricing that walks them in order;
        ``columns``: the optional block columns it needs, None for all)."""
        if not blocks:
            for cols in self.source.column_chunks(start):
                yield View(cols)
            return
        for a, chunk in self.source.chunks(columns):
            yield View(self.source.columns(a, a + chunk.n_requests), chunk)

    # ------------------------------------------------------------------ lifetimes
    def stored_token_seconds(self, run: CacheRun, window: Window, *, shared_only: bool = False) -> float:
        """Token-seconds the run's cache entries live inside the billed window (TTL caches).

        Only meaningful for an unlimited cache with a TTL (capacity evictions are not tracked):
        an entry lives from its write until ``ttl`` after its last touch (``refresh_on_hit``)
        or after its write (``from_write``).  Without a TTL an entry lives to the window's end.
        ``shared_only`` counts only blocks that appear in two or more requests (content an
        explicit-cache user would choose to cache).
        """
        cfg = run.cfg
        if not cfg.unlimited:
            raise ValueError("stored_token_seconds needs an unlimited (TTL-bound) cache")
        key = (cfg, run.min_tokens, window.warmup_s, shared_only)
        if key in self._lifetimes:
            return self._lifetimes[key]

        def chunks():  # the eligible requests, a chunk at a time (simkv.economics.lifetimes)
            return (c for _, _, c in self.source.eligible_chunks(run.min_tokens))

        total = token_seconds(chunks, content=cfg.reuse == "chunk", ttl_s=cfg.ttl_s,
                              ttl_mode=cfg.ttl_mode, lo=window.start_s + window.warmup_s,
                              hi=window.end_s, shared_only=shared_only)
        self._lifetimes[key] = total
        return total

    # ------------------------------------------------------------------ bootstrap units
    def billed(self, window: Window) -> Billed:
        """The window's billed requests and their bootstrap units (memoized for the last
        window: the bills of one run, or every tier of ``recommend``, share it)."""
        if self._billed is not None and self._billed.window == window:
            return self._billed
        self._billed = None
        first = self.source.first_row_at(window.start_s + window.warmup_s)
        sessions, n_billed, n_own = np.zeros(0, dtype=np.int64), 0, 0
        pending: list[np.ndarray] = []  # chunks' sessions, merged once they outgrow the set
        for cols in self.source.column_chunks(first):
            sess = cols.session_ids
            n_billed += cols.n
            own = sess == NO_ID
            n_own += int(own.sum())
            pending.append(np.unique(sess[~own]))
            if sum(len(p) for p in pending) > len(sessions):
                sessions, pending = np.unique(np.concatenate([sessions, *pending])), []
        sessions = np.unique(np.concatenate([sessions, *pending]))
        if len(sessions) and sessions[0] < NO_ID:
            raise InputError(f"session ids must be >= 0 or {NO_ID} (none); found {sessions[0]}",
                             source=self.source.source.path)
        by_session = len(sessions) > 0
        n_slices = max(1, min(50, n_billed))
        b = Billed(window=window, first_row=first, n_billed=n_billed,
                   label="sessions" if by_session else f"{n_slices} time slices",
                   n_units=0, by_session=by_session, sessions=sessions, n_own=n_own,
                   slices=np.zeros(0, dtype=np.int64), n_slices=n_slices)
        if by_session:
            b = replace(b, n_units=n_own + len(sessions))
        else:
            present = np.zeros(n_slices, dtype=bool)
            for cols in self.source.column_chunks(first):
                present[b._slice_of(cols.arrival_s)] = True
            slices = np.flatnonzero(present)
            b = replace(b, slices=slices, n_units=len(slices))
        self._billed = b
        return b

    def rng_for(self, label: str) -> np.random.Generator:
        """A generator for one bill's bootstrap, keyed by its label (order-independent)."""
        ss = np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(label.encode()),))
        return np.random.default_rng(ss)
