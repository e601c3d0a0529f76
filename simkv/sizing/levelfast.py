"""The compiled storage-level walk's state and its Python side: growth, events, samples.

``FastLevels`` owns the flat arrays ``simkv.sizing.levelkernel.walk`` runs over (one row per
level, one column per chunk key's slot, grown as new keys appear) and exposes each level as a
``FastLevel`` with the interface of ``simkv.sizing.levelstate.LevelState`` that lifecycle event
handlers (``simkv.sizing.events``) and the storage view use: ``capacity``, ``quotas``, ``used``,
``stale``, ``by_model``, ``len``, ``clear``, ``shrink``, ``mark_stale``.  Events are rare, so
they stay in Python (each a compiled helper over the same arrays); ``walk_chunk`` calls the
kernel and handles the stops it reports (an event or a sample due, arrays to grow).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import types
from numba.typed import Dict

from simkv.cache.statemachine import slots_matching
from simkv.hashing import template_salt
from simkv.sizing import levelkernel as K
from simkv.sizing.events.template_change import ALL_COMPONENTS
from simkv.sizing.levelrun import LEVEL_COLUMNS, REQUEST_COLUMNS, LevelsRun
from simkv.sizing.levels import Hierarchy
from simkv.sizing.levelstate import Entry, Victims
from simkv.sizing.levelstep import _level_chains
from simkv.sizing.levelwalk import walk
from simkv.trace.model import TAG_CODES, Trace

_KEY = types.UniTuple(types.int64, 3)
#: the per-level slot arrays and their dtypes (``S`` of the kernel, in order)
_SLOT_ARRAYS = (("prev", np.int64), ("nxt", np.int64), ("stamp", np.float64),
                ("group", np.int32), ("mask", np.int32), ("flags", np.uint8),
                ("counts", np.uint8))


class FastLevels:
    """The state of every level of one run, as the compiled walk reads and writes it."""

    def __init__(self, hierarchy: Hierarchy, chunk_bytes: list[list[int]],
                 bytes_per_token: list[float], quotas: list[dict[int, int]]) -> None:
        levels = hierarchy.levels
        self.hierarchy = hierarchy
        self.n_levels = n = len(levels)
        n_models = len(bytes_per_token)
        sizes = sorted({lv.chunk_tokens for lv in levels})
        self.fam = np.array([sizes.index(lv.chunk_tokens) for lv in levels], dtype=np.int64)
        self.first_of = np.array([int(np.nonzero(self.fam == f)[0][0]) for f in self.fam],
                                 dtype=np.int64)
        self.csz = np.array(chunk_bytes, dtype=np.int64).reshape(n, n_models)
        self.bpt = np.asarray(bytes_per_token, dtype=np.float64)
        self.ct = np.array([lv.chunk_tokens for lv in levels], dtype=np.int64)
        self.sp = np.array([lv.store_partial for lv in levels], dtype=np.int64)
        self.ttl = np.array([-1.0 if lv.ttl_s is None else lv.ttl_s for lv in levels])
        self.lat = np.array([lv.latency_s for lv in levels], dtype=np.float64)
        self.rbps = np.array([lv.read_bytes_per_s for lv in levels], dtype=np.float64)
        self.opt = np.array([hierarchy.placement == "exclusive", hierarchy.promote_on_hit,
                             hierarchy.demote_on_evict, hierarchy.admission == "all"],
                            dtype=np.int64)
        self.cap_ids = 0
        for name, dt in _SLOT_ARRAYS:
            setattr(self, name, np.zeros((n, 1), dtype=dt))
        self._grow(1024)
        self.sc = np.zeros((n, 3), dtype=np.int64)
        self.byg = np.zeros((n, n_models), dtype=np.int64)
        self.seen = np.zeros((n, n_models), dtype=np.uint8)
        self.cnt = np.zeros(2, dtype=np.int64)
        self.ids = np.zeros(1, dtype=np.int64)
        self.keys = Dict.empty(key_type=_KEY, value_type=types.int64)
        self.levels = [FastLevel(self, j, lv.capacity_bytes, lv.ttl_s, quotas[j])
                       for j, lv in enumerate(levels)]

    def _grow(self, need: int) -> None:
        """Room for ``need`` ids (slots 1..need), growing by half at least."""
        if need <= self.cap_ids:
            return
        cap = max(need, self.cap_ids + self.cap_ids // 2)
        for name, dt in _SLOT_ARRAYS:
            old = getattr(self, name)
            new = np.zeros((self.n_levels, cap + 1), dtype=dt)
            new[:, :old.shape[1]] = old
            setattr(self, name, new)
        self.cap_ids = cap

    def state(self) -> tuple:
        return (self.prev, self.nxt, self.stamp, self.group, self.mask, self.flags, self.counts,
                self.sc, self.byg, self.seen, self.cnt)

    def params(self) -> tuple:
        """The kernel's level parameters as they are now (events change capacities, quotas)."""
        cap = np.array([-1 if s.capacity is None else s.capacity for s in self.levels],
                       dtype=np.int64)
        quota = np.full(self.byg.shape, -1, dtype=np.int64)
        for j, s in enumerate(self.levels):
            for m, q in s.quotas.items():
                quota[j, m] = q
        return (cap, quota, self.csz, self.ct, self.sp, self.ttl, self.lat, self.rbps, self.bpt,
                self.opt)


class FastLevel:
    """One level of a ``FastLevels``: what events and the storage view read and change."""

    def __init__(self, store: FastLevels, j: int, capacity: int | None, ttl: float | None,
                 quotas: dict[int, int]) -> None:
        self.store = store
        self.j = j
        self.capacity = capacity
        self.ttl = ttl
        self.quotas = dict(quotas)

    @property
    def used(self) -> int:
        return int(self.store.sc[self.j, K.USED])

    @property
    def stale(self) -> int:
        return int(self.store.sc[self.j, K.STALE_B])

    @property
    def by_model(self) -> dict[int, int]:
        s = self.store
        return {m: int(s.byg[self.j, m]) for m in np.nonzero(s.seen[self.j])[0].tolist()}

    def __len__(self) -> int:
        return int(self.store.sc[self.j, K.ENTRIES])

    def _slots(self, model: int | None) -> np.ndarray:
        s = self.store
        return slots_matching(s.nxt[self.j], s.group[self.j].astype(np.int64),
                              -1 if model is None else model)

    def clear(self, model: int | None = None) -> int:
        """Drop every entry (of ``model``); returns how many."""
        slots = self._slots(model)
        K.drop_slots(self.store.state(), self.store.csz, self.j, slots)
        return len(slots)

    def shrink(self) -> Victims:
        """Evict to fit a lowered capacity or quota (the victims' bytes, as ``Entry``s)."""
        s, out = self.store, []
        sizes = []
        for m, q in self.quotas.items():
            sizes.append(K.shrink_level(s.state(), s.csz, self.j, m, q))
        if self.capacity is not None:
            sizes.append(K.shrink_level(s.state(), s.csz, self.j, -1, self.capacity))
        for arr in sizes:
            out += [(None, Entry(int(b), -1, 0, 0.0)) for b in arr.tolist()]
        return out

    def mark_stale(self, is_hit: Callable[[int], bool]) -> None:
        """Entries whose component mask ``is_hit`` become stale (their bytes stay used)."""
        s, j = self.store, self.j
        slots = self._slots(None)
        if not len(slots):
            return
        masks = s.mask[j, slots].astype(np.int64)
        uniq = np.unique(masks)
        hit = np.array([bool(is_hit(int(v))) for v in uniq.tolist()])
        new = slots[hit[np.searchsorted(uniq, masks)] & ((s.flags[j, slots] & K.STALE) == 0)]
        s.flags[j, new] |= K.STALE
        s.sc[j, K.STALE_B] += int(s.csz[j, s.group[j, new].astype(np.int64)].sum())


class _Chunk:
    """One chunk of the trace as the kernel reads it: per-level chains, tags, token counts."""

    def __init__(self, chunk: Trace, store: FastLevels) -> None:
        self.trace = chunk
        offs, hashes, base, done = [], [], [], {}
        total = 0
        for lv in store.hierarchy.levels:
            if lv.chunk_tokens not in done:
                t2, _ = _level_chains(chunk, lv.chunk_tokens)
                done[lv.chunk_tokens] = (t2.block_offsets.astype(np.int64),
                                         np.ascontiguousarray(t2.block_hashes).view(np.int64),
                                         total)
                total += len(t2.block_hashes)
                hashes.append(done[lv.chunk_tokens][1])
            off, _h, b = done[lv.chunk_tokens]
            offs.append(off)
            base.append(b)
        self.hoff = np.stack(offs)
        self.hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.int64)
        self.hbase = np.array(base, dtype=np.int64)
        self.has_tags = chunk.block_tags is not None
        self.tags = (chunk.block_tags.astype(np.int8) if self.has_tags
                     else np.zeros(1, dtype=np.int8))
        self.tokcnt = chunk.block_token_counts().astype(np.int64)
        self.arrival = np.ascontiguousarray(chunk.arrival_s, dtype=np.float64)
        self.inp = np.ascontiguousarray(chunk.input_tokens, dtype=np.int64)
        self.midx = np.ascontiguousarray(chunk.model_index, dtype=np.int64)
        self.boff = np.ascontiguousarray(chunk.block_offsets, dtype=np.int64)


def start_chunk(run: LevelsRun, chunk: Trace) -> np.ndarray:
    """``run.start_chunk`` with the per-request counters as rows of one array (the kernel's
    ``R``); the rec dict keeps the reference's column order."""
    run.start_chunk(chunk)
    names = list(REQUEST_COLUMNS) + [f"{c}_{nm}" for nm in run.names for c in LEVEL_COLUMNS]
    assert names == list(run.rec), "the record columns changed: update levelkernel too"
    R = np.zeros((len(names), chunk.n_requests), dtype=np.int64)
    run.rec = {k: R[i] for i, k in enumerate(names)}
    return R


def _salts(run: LevelsRun) -> tuple[np.ndarray, np.ndarray]:
    """The template versions as the kernel reads them: component code (-1: whole prompt) and
    salt per version above 0, in the reference's order."""
    codes, vals = [], []
    for comp, v in run.versions.items():
        if v <= 0:
            continue
        codes.append(-1 if comp is None else TAG_CODES[comp])
        vals.append(template_salt(comp, v))
    return (np.array(codes, dtype=np.int64),
            np.array(vals, dtype=np.uint64).view(np.int64))


ApplyDue = Callable[[LevelsRun, list, int, float, int], int]


def walk_chunk(run: LevelsRun, store: FastLevels, chunk: Trace, R: np.ndarray, events: list,
               ei: int, next_sample: float, interval: float,
               apply_due: ApplyDue) -> tuple[int, float]:
    """Walk one chunk of the trace (``run`` already started on it); returns (next event index,
    next sample time).  Same order per request as the reference loop: events due, expiry,
    sample, step."""
    c = _Chunk(chunk, store)
    r, phase = 0, 0
    n = chunk.n_requests
    while r < n:
        next_ev = events[ei].time_s if ei < len(events) else float("inf")
        codes, vals = _salts(run)
        r, why = walk(store.state(), store.params(), store.keys, store.ids, store.fam,
                        store.first_of, codes, vals, ALL_COMPONENTS, c.arrival, c.inp, c.midx,
                        c.boff, c.tags, c.has_tags, c.tokcnt, chunk.block_tokens, c.hoff,
                        c.hashes, c.hbase, R, run.load_s, run.comp_in, run.comp_hit, r, phase,
                        next_ev, next_sample, store.cap_ids)
        if why == K.EVENT:
            ei = apply_due(run, events, ei, float(c.arrival[r]), r)
            phase = 0
        elif why == K.SAMPLE:
            t = float(c.arrival[r])
            run.snapshot(t)
            next_sample = t + interval
            phase = 1
        elif why == K.GROW:
            need = int(store.ids[0]) + int((c.hoff[:, r + 1] - c.hoff[:, r]).sum())
            store._grow(need)
            phase = 1
    return ei, next_sample
