"""What every bill on a trace needs: the trace with its model, cache runs, lifetimes, window.

The trace is held as per-request columns (:mod:`simkv.economics.requests`); every pass over
its blocks (the engine, lifetimes, breakpoints, prefix units, a fleet's hour) reads them back
from the source chunk by chunk, so a trace file's blocks are never all in memory.

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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simkv.cache import CacheConfig
from simkv.cache.engine import simulate_stream
from simkv.economics.bill import unit_index
from simkv.economics.lifetimes import token_seconds
from simkv.economics.requests import BillTrace
from simkv.economics.window import WarmupSpec, Window, make_window
from simkv.errors import InputError
from simkv.models.geometry import ModelSpec, get_model
from simkv.trace.model import NO_ID, Trace
from simkv.trace.stream import TraceSource


@dataclass(frozen=True)
class CacheRun:
    """One engine run mapped back onto every request of the full trace.

    ``eligible`` marks requests at or above the book's minimum prompt (the others bypass the
    cache); ``hit_tokens`` are the reused tokens (prefix hit, or chunk hits net of blending),
    ``hit_blocks`` the blocks read from the cache, ``touched_cached_blocks`` the blocks that were
    already cached when touched (so ``blocks - touched_cached_blocks`` were written).
    Only per-request outcomes are held: the eligible requests' blocks are read again from the
    source when a pass needs them, so memoized runs do not each keep a copy of the blocks.
    ``blocks`` (blocks per request) and, in prefix mode, the all-zero ``blend_tokens`` are one
    array per context shared by its runs (~25 bytes a request per run remain).
    """

    cfg: CacheConfig
    min_tokens: int
    eligible: np.ndarray
    hit_tokens: np.ndarray
    hit_blocks: np.ndarray
    touched_cached_blocks: np.ndarray
    blocks: np.ndarray
    blend_tokens: np.ndarray
    first_fill_s: float | None
    source: BillTrace = field(repr=False)

    @property
    def rows(self) -> np.ndarray:
        """Indices of the eligible requests (sorted)."""
        return np.flatnonzero(self.eligible)

    @property
    def sub_trace(self) -> Trace:
        """The eligible requests as one trace, read from the source (for tests and small
        traces: it holds their blocks)."""
        return self.source.select(self.rows)


@dataclass(frozen=True, eq=False)
class Billed:
    """The requests a window bills: ``rows`` (indices, or a slice when they are a suffix of
    the trace, as with time-sorted arrivals), each one's bootstrap unit and its index among
    the sorted units (:func:`simkv.economics.bill.unit_index`)."""

    window: Window
    rows: np.ndarray | slice
    units: np.ndarray
    label: str
    inverse: np.ndarray
    n_units: int


class BillContext:
    """A trace, its model and the billing options; memoizes cache runs and lifetimes.

    ``trace``: an in-memory trace, a :class:`TraceSource` (a file read chunk by chunk) or a
    :class:`BillTrace` already read (shared by several contexts); ``chunk_requests``: the
    chunk size of every block pass (results do not depend on it).
    """

    def __init__(self, trace: Trace | TraceSource | BillTrace, model: str | ModelSpec | None = None,
                 *, reuse: str = "prefix", blend_recompute_share: float = 0.0,
                 warmup: WarmupSpec | None = None, days_per_month: float = 30.0,
                 n_boot: int = 200, seed: int = 0, chunk_requests: int | None = None,
                 keep_requests: bool = True) -> None:
        if reuse not in ("prefix", "chunk"):
            raise InputError(f"unknown reuse mode {reuse!r} (valid: prefix, chunk)", where="--reuse")
        if days_per_month <= 0:
            raise InputError("must be > 0", where="--days-per-month")
        if n_boot < 0:
            raise InputError("must be >= 0", where="--bootstrap")
        bt = trace if isinstance(trace, BillTrace) else BillTrace(trace, model, chunk_requests)
        req = bt.requests
        if not req.has_models:
            raise InputError("the trace names no model: give --model NAME", where="--model")
        if len(set(req.models)) > 1:
            raise InputError("bills need one model per trace; this trace names several "
                             f"({', '.join(req.models)})", where="--trace")
        if reuse == "chunk" and not req.has_content_hashes:
            raise InputError("chunk reuse needs per-block content hashes, and this trace has none "
                             "(importers of chained hashes cannot know them); use --reuse prefix",
                             where="--reuse")
        self.source = bt
        #: the per-request columns (the blocks stay in ``source``)
        self.requests = req
        self.spec = model if isinstance(model, ModelSpec) else get_model(req.models[0])
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
        self._shared: dict[str, np.ndarray] = {}
        self._billed: Billed | None = None
        self._lifetimes: dict[tuple, float] = {}
        #: when set, every bill uses this window (e.g. to compare tiers on the same requests)
        self.fixed_window: Window | None = None

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
        tr = self.requests
        n = tr.n_requests
        eligible = tr.input_tokens >= max(int(min_tokens), 1)
        rows = np.flatnonzero(eligible)
        outcomes = _Outcomes(rows, n, cfg.reuse == "chunk", self._shared_array("zeros"))
        if len(rows):
            simulate_stream(_Eligible(whole=self.source, rows=rows), cfg,
                            specs={self.spec.name: self.spec}, keep=False, sink=outcomes.add)
            assert outcomes.done == len(rows), "the engine's records do not cover its requests"
        hit_tok, hit_blk, touched = outcomes.hit_tokens, outcomes.hit_blocks, outcomes.touched
        blend = outcomes.blend
        first_fill = (None if outcomes.first_eviction is None
                      else float(tr.arrival_s[outcomes.first_eviction]))
        out = CacheRun(cfg=cfg, min_tokens=int(min_tokens), eligible=eligible, hit_tokens=hit_tok,
                       hit_blocks=hit_blk, touched_cached_blocks=touched,
                       blocks=self._shared_array("blocks"), blend_tokens=blend,
                       first_fill_s=first_fill, source=self.source)
        self._runs[key] = out
        return out

    def _shared_array(self, name: str) -> np.ndarray:
        """A per-request array every run of this context shares (read-only by convention)."""
        if name not in self._shared:
            tr = self.requests
            self._shared[name] = (np.diff(tr.block_offsets).astype(np.int64) if name == "blocks"
                                  else np.zeros(tr.n_requests, dtype=np.int64))
        return self._shared[name]

    def forget_runs(self) -> None:
        """Drop the memoized runs (their per-request outcomes) when none will be asked again."""
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
        return make_window(self.requests.arrival_s, self.warmup, self.days_per_month,
                           None if run is None else run.first_fill_s)

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
            return self.source.eligible_chunks(run.rows)

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
        rows = window.measured(self.requests.arrival_s)
        units, label = self.bootstrap_units(rows, window)
        inverse, n_units = unit_index(units)
        if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):
            rows = slice(int(rows[0]), int(rows[-1]) + 1)  # a suffix of the trace: views
        self._billed = Billed(window=window, rows=rows, units=units, label=label,
                              inverse=inverse, n_units=n_units)
        return self._billed

    def bootstrap_units(self, rows: np.ndarray, window: Window) -> tuple[np.ndarray, str]:
        """Resampling unit of each billed request: its session, else a time slice."""
        sess = self.requests.session_ids[rows]
        if len(sess) and np.any(sess != NO_ID):
            # requests without a session are their own unit
            fake = -(np.arange(len(sess), dtype=np.int64) + 2)
            return np.where(sess != NO_ID, sess, fake), "sessions"
        n_slices = max(1, min(50, len(rows)))
        t = self.requests.arrival_s[rows] - (window.start_s + window.warmup_s)
        width = window.length_s / n_slices
        return np.minimum((t // width).astype(np.int64), n_slices - 1), f"{n_slices} time slices"

    def rng_for(self, label: str) -> np.random.Generator:
        """A generator for one bill's bootstrap, keyed by its label (order-independent)."""
        ss = np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(label.encode()),))
        return np.random.default_rng(ss)


@dataclass(frozen=True, eq=False)
class _Eligible(TraceSource):
    """The requests ``rows`` of a bill's trace as a stream: one chunk of them is read and
    copied at a time (``BillTrace.eligible_chunks``), never all their blocks at once."""

    whole: BillTrace | None = None
    rows: np.ndarray | None = None

    def _raw_chunks(self, chunk_requests, columns, ids_as_keys):
        yield from self.whole.eligible_chunks(self.rows)


class _Outcomes:
    """The engine's per-request outcomes a bill reads, written in place chunk by chunk (the
    sink gets the eligible requests' records in order; the rest of each record is dropped), so
    no list of chunk arrays and no concatenated copy is held beside the run's arrays.  Results
    equal ``simulate``'s on those requests for any chunk size (``tests/unit/test_streaming.py``,
    ``tests/unit/test_bill_sums.py``)."""

    def __init__(self, rows: np.ndarray, n: int, chunk_reuse: bool, zeros: np.ndarray) -> None:
        self.rows, self.chunk_reuse, self.done = rows, chunk_reuse, 0
        self.hit_tokens, self.hit_blocks, self.touched = (np.zeros(n, dtype=np.int64)
                                                          for _ in range(3))
        #: all zero (prefix reuse, or no blending) stays the context's shared zeros
        self.blend, self._own_blend = zeros, False
        self.first_eviction: int | None = None

    def add(self, frame: pd.DataFrame) -> None:
        r = self.rows[self.done:self.done + len(frame)]
        self.done += len(frame)
        self.hit_tokens[r] = frame["reused_tokens"].to_numpy()
        self.hit_blocks[r] = frame["hit_blocks" if self.chunk_reuse else "prefix_hit_blocks"].to_numpy()
        self.touched[r] = frame["hit_blocks"].to_numpy()
        blend = frame["blend_recompute_tokens"].to_numpy()
        if np.any(blend):
            if not self._own_blend:  # never write into the shared zeros
                self.blend, self._own_blend = np.zeros(len(self.hit_tokens), dtype=np.int64), True
            self.blend[r] = blend
        if self.first_eviction is None:
            ev = np.flatnonzero(frame["evictions"].to_numpy() > 0)
            if len(ev):
                self.first_eviction = int(r[ev[0]])
