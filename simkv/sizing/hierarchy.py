"""Simulation of a storage hierarchy with lifecycle events: a slow, obviously-correct reference.

Plain Python (an OrderedDict per level, least recently used first), one request at a time:

1. lifecycle events due by the request's arrival are applied; entries past a level's TTL go;
2. the request's prefix is served: walking its tokens from 0, each position is served by the
   fastest level holding the chunk that covers it (levels chunk the prompt at their own size;
   a chunk's id is the chained hash where it ends, derived by exact re-chunking), and the
   served prefix ends at the first position no level holds;
3. the request's chunks are written: HBM (level 0) always holds the whole prompt afterwards;
   with ``inclusive`` placement every lower level also gets every chunk (write-through, as
   LMCache stores to each backend), except that chunks served from a slower level are copied
   up only with ``promote_on_hit``; with ``exclusive`` placement a chunk lives in one level,
   new chunks go to HBM, a hit below HBM moves the chunk up (``promote_on_hit``);
4. an entry evicted from a level moves one level down with ``demote_on_evict`` (levels of the
   same chunk size; in inclusive mode only if the level below lacks it), else it is dropped.

Levels below HBM admit ``all`` chunks or only those seen at least twice (``second_access``);
per-model quotas evict that model's least recently used entries first.  Every chunk of a request
present in a level is touched (recency and TTL), like the single-cache engine.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simkv.cache.engine import resolve_trace_models
from simkv.errors import InputError
from simkv.hashing import template_salt
from simkv.models.geometry import get_model
from simkv.sizing.levels import Hierarchy
from simkv.sizing.lifecycle import Event, sort_events, trace_events
from simkv.trace.model import TAG_CODES, TAG_NAMES, Trace

_ALL_TAGS = (1 << len(TAG_NAMES)) - 1


@dataclass
class _Entry:
    size: int
    model: int
    mask: int
    t: float
    stale: bool = False


class _Level:
    """One level's state: LRU order, used bytes, bytes by model, stale bytes."""

    def __init__(self, capacity: int | None, ttl: float | None, quotas: dict[int, int]) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self.quotas = dict(quotas)
        self.entries: OrderedDict[tuple[int, int], _Entry] = OrderedDict()
        self.used = 0
        self.stale = 0
        self.by_model: dict[int, int] = {}

    def _drop(self, key) -> _Entry:
        e = self.entries.pop(key)
        self.used -= e.size
        self.by_model[e.model] -= e.size
        if e.stale:
            self.stale -= e.size
        return e

    def touch(self, key, t: float) -> None:
        self.entries.move_to_end(key)
        self.entries[key].t = t

    def fits(self, e: _Entry) -> bool:
        q = self.quotas.get(e.model)
        return (self.capacity is None or e.size <= self.capacity) and (q is None or e.size <= q)

    def insert(self, key, e: _Entry) -> list[tuple[tuple[int, int], _Entry]]:
        """Add ``e`` (caller checked ``fits``); returns the entries evicted to make room."""
        out = []
        q = self.quotas.get(e.model) if self.quotas else None
        if q is not None:
            while self.by_model.get(e.model, 0) + e.size > q:
                victim = next(k for k, v in self.entries.items() if v.model == e.model)
                out.append((victim, self._drop(victim)))
        if self.capacity is not None:
            while self.used + e.size > self.capacity:
                victim = next(iter(self.entries))
                out.append((victim, self._drop(victim)))
        self.entries[key] = e
        self.used += e.size
        self.by_model[e.model] = self.by_model.get(e.model, 0) + e.size
        return out

    def shrink(self) -> list[tuple[tuple[int, int], _Entry]]:
        """Evict to fit a lowered capacity or quota."""
        out = []
        for m, q in self.quotas.items():
            while self.by_model.get(m, 0) > q:
                victim = next(k for k, v in self.entries.items() if v.model == m)
                out.append((victim, self._drop(victim)))
        while self.capacity is not None and self.used > self.capacity:
            victim = next(iter(self.entries))
            out.append((victim, self._drop(victim)))
        return out

    def expire(self, t: float) -> int:
        n = 0
        if self.ttl is None:
            return 0
        for key in [k for k, e in self.entries.items() if t - e.t >= self.ttl]:
            self._drop(key)
            n += 1
        return n

    def clear(self, pred=None) -> int:
        keys = [k for k, e in self.entries.items() if pred is None or pred(e)]
        for k in keys:
            self._drop(k)
        return len(keys)


@dataclass
class LevelsResult:
    """Per-request ``records``, the storage view (``timeline``, ``bytes_by_model``,
    ``components``), applied ``events`` and a ``summary`` dict."""

    records: pd.DataFrame
    timeline: pd.DataFrame
    bytes_by_model: pd.DataFrame
    components: pd.DataFrame
    events: pd.DataFrame
    summary: dict

    def frames(self) -> dict[str, pd.DataFrame]:
        return {"records": self.records, "timeline": self.timeline,
                "bytes_by_model": self.bytes_by_model, "components": self.components,
                "events": self.events}


def _level_chains(trace: Trace, chunk_tokens: int) -> tuple[Trace, bool]:
    """The trace chunked at a level's size (exact when coarser; approximate when finer)."""
    if chunk_tokens == trace.block_tokens:
        return trace, False
    from simkv.trace.rechunk import rechunk

    if chunk_tokens % trace.block_tokens and trace.block_tokens % chunk_tokens:
        raise InputError(f"a level's chunk of {chunk_tokens} tokens is neither a multiple nor a "
                         f"divisor of the trace's {trace.block_tokens}-token blocks",
                         where="levels.chunk_tokens")
    return rechunk(trace, chunk_tokens), chunk_tokens < trace.block_tokens


def simulate_levels(trace: Trace, hierarchy: Hierarchy, *, model: str | None = None,
                    events: list[Event] | tuple = (), use_trace_events: bool = True,
                    sample_interval_s: float | None = None) -> LevelsResult:
    """Replay ``trace`` through ``hierarchy`` with lifecycle ``events`` (see module docstring)."""
    trace = resolve_trace_models(trace, model)
    if not trace.has_models:
        raise InputError("storage levels hold bytes, so every request needs a model: give --model",
                         where="--model")
    levels = hierarchy.levels
    nl = len(levels)
    names = [lv.name for lv in levels]
    model_idx = {m: i for i, m in enumerate(trace.models)}
    specs = [get_model(m) for m in trace.models]
    bpt = [sp.kv_bytes_per_token for sp in specs]
    # a chunk occupies a whole chunk's bytes even when the prompt ends inside it (allocation
    # unit, as vLLM blocks and simkv.cache do); reads count the tokens actually loaded
    chunk_bytes = [[sp.block_bytes(lv.chunk_tokens) for sp in specs] for lv in levels]
    state = []
    for lv in levels:
        quotas = {}
        for m, q in lv.quotas_bytes:
            if m not in model_idx:
                raise InputError(f"quota for a model the trace does not use: {m!r}",
                                 where=f"levels.{lv.name}.quotas")
            quotas[model_idx[m]] = int(q)
        state.append(_Level(lv.capacity_bytes, lv.ttl_s, quotas))
    chains, approx = [], []
    for lv in levels:
        t2, a = _level_chains(trace, lv.chunk_tokens)
        chains.append((t2.block_offsets, t2.block_hashes.tolist()))
        approx.append(a)
    all_events = sort_events(list(events) + (trace_events(trace.meta) if use_trace_events else []))
    for e in all_events:
        if e.kind in ("reset", "reset_bucket", "quota", "tier_upgrade"):
            hierarchy.index(e.get("level"), where=f"event {e.kind}.level")
        if e.kind in ("quota", "model_upgrade") and e.get("model") not in model_idx:
            raise InputError(f"event names a model the trace does not use: {e.get('model')!r}",
                             where=f"event {e.kind}.model")

    bt = trace.block_tokens
    tags = trace.block_tags
    has_tags = tags is not None
    offsets_f = trace.block_offsets
    tok_f = trace.block_token_counts()
    n_req = trace.n_requests
    versions: dict[str | None, int] = {}
    counts: list[dict] = [dict() for _ in range(nl)]  # admission: accesses per chunk key
    interval = sample_interval_s or max(trace.duration_s / 200.0, 1e-9)
    next_sample = float(trace.arrival_s[0]) if n_req else 0.0

    rec = {k: np.zeros(n_req, dtype=np.int64) for k in
           ["hit_tokens", "missed_tokens", "promoted_bytes", "demoted_bytes", "evicted_bytes"]}
    for nm in names:
        for col in ("served_tokens", "read_bytes", "written_bytes", "loads"):
            rec[f"{col}_{nm}"] = np.zeros(n_req, dtype=np.int64)
    load_s = np.zeros(n_req, dtype=np.float64)
    comp_in = np.zeros(len(TAG_NAMES), dtype=np.int64)
    comp_hit = np.zeros(len(TAG_NAMES), dtype=np.int64)
    timeline, by_model, applied = [], [], []
    totals = {"expirations": 0, "evictions": 0}

    def snapshot(t: float) -> None:
        sample = len(timeline) // nl
        for i, lv in enumerate(levels):
            s = state[i]
            timeline.append({"sample": sample, "time_s": t, "level": lv.name, "used_bytes": s.used,
                             "capacity_bytes": s.capacity, "entries": len(s.entries),
                             "utilization": (s.used / s.capacity) if s.capacity else None,
                             "stale_bytes": s.stale})
            for m, b in sorted(s.by_model.items()):
                by_model.append({"sample": sample, "time_s": t, "level": lv.name,
                                 "model": trace.models[m],
                                 "bytes": b})

    def place(j: int, key, e: _Entry, r: int, kind: str) -> bool:
        """Insert into level j (demoting what it evicts); False if it does not fit."""
        s = state[j]
        if not s.fits(e):
            return False
        for vk, ve in s.insert(key, e):
            evicted(j, vk, ve, r)
        rec[f"written_bytes_{names[j]}"][r] += e.size
        if kind in ("demote", "promote"):
            rec[f"{kind}d_bytes"][r] += e.size
        return True

    def admitted(j: int, key) -> bool:
        return j == 0 or hierarchy.admission == "all" or counts[j].get(key, 0) >= 2

    def evicted(j: int, key, e: _Entry, r: int) -> None:
        totals["evictions"] += 1
        down = j + 1
        if (hierarchy.demote_on_evict and not e.stale and down < nl
                and levels[down].chunk_tokens == levels[j].chunk_tokens
                and key not in state[down].entries and admitted(down, key)):
            if place(down, key, _Entry(e.size, e.model, e.mask, e.t), r, "demote"):
                return
        rec["evicted_bytes"][r] += e.size

    def apply(ev: Event, r: int) -> None:
        kind = ev.kind
        if kind in ("reset", "reset_bucket"):
            state[hierarchy.index(ev.get("level"), where="event.level")].clear()
        elif kind == "replica_restart":
            for i, lv in enumerate(levels):
                if not lv.persistent:
                    state[i].clear()
        elif kind == "model_upgrade":
            m = model_idx[ev.get("model")]
            for s in state:
                s.clear(lambda e, m=m: e.model == m)
        elif kind == "tier_upgrade":
            s = state[hierarchy.index(ev.get("level"), where="event.level")]
            s.capacity = int(ev.get("capacity_bytes"))
            for _k, ve in s.shrink():
                rec["evicted_bytes"][min(r, n_req - 1)] += ve.size
        elif kind == "quota":
            s = state[hierarchy.index(ev.get("level"), where="event.level")]
            s.quotas[model_idx[ev.get("model")]] = int(ev.get("capacity_bytes"))
            for _k, ve in s.shrink():
                rec["evicted_bytes"][min(r, n_req - 1)] += ve.size
        elif kind == "template_change":
            comp = ev.get("component")
            versions[comp] = int(ev.get("version", versions.get(comp, 0) + 1))
            bit = _ALL_TAGS if comp is None or not has_tags else 1 << TAG_CODES[comp]
            for s in state:
                for e in s.entries.values():
                    if not e.stale and e.mask & bit:
                        e.stale = True
                        s.stale += e.size
        applied.append({"time_s": ev.time_s, "kind": kind, "applied_at_s": (
            float(trace.arrival_s[r]) if r < n_req else None),
            "params": ", ".join(f"{k}={v}" for k, v in sorted(ev.params.items()))})

    ei = 0
    for r in range(n_req):
        t = float(trace.arrival_s[r])
        while ei < len(all_events) and all_events[ei].time_s <= t:
            apply(all_events[ei], r)
            snapshot(all_events[ei].time_s)
            ei += 1
        for s in state:
            totals["expirations"] += s.expire(t)
        if t >= next_sample:
            snapshot(t)
            next_sample = t + interval
        n = int(trace.input_tokens[r])
        m = int(trace.model_index[r])
        fa, fb = int(offsets_f[r]), int(offsets_f[r + 1])
        # per fine block: prefix tag mask and template salt
        if has_tags:
            codes = tags[fa:fb].astype(np.int64)
            mask_f = np.bitwise_or.accumulate(np.left_shift(1, codes)) if fb > fa else codes
        else:
            mask_f = np.full(fb - fa, _ALL_TAGS, dtype=np.int64)
        salt_starts = []
        for comp, v in versions.items():
            if v <= 0:
                continue
            if comp is None or not has_tags:
                pos = 0
            else:
                hit = np.nonzero(tags[fa:fb] == TAG_CODES[comp])[0]
                if not len(hit):
                    continue
                pos = int(hit[0])
            salt_starts.append((pos, template_salt(comp, v)))
        # chunks per level: (key, start token, end token, size bytes, mask, storable)
        if salt_starts:
            salt_f = np.zeros(fb - fa, dtype=np.uint64)
            for pos, sv in salt_starts:
                salt_f[pos:] ^= np.uint64(sv)
        mask_list = mask_f.tolist()
        chunks = []
        for j, lv in enumerate(levels):
            off, hashes = chains[j]
            a, b = int(off[r]), int(off[r + 1])
            B = lv.chunk_tokens
            size = chunk_bytes[j][m]
            ends = [min((k + 1) * B, n) for k in range(b - a)]
            fine = [(e - 1) // bt for e in ends]
            if salt_starts:
                salts = salt_f[fine].tolist()
                keys = [(m, h ^ sl) for h, sl in zip(hashes[a:b], salts, strict=True)]
            else:
                keys = [(m, h) for h in hashes[a:b]]
            lst = [(key, k * B, e, size, mask_list[f], lv.store_partial or e - k * B == B)
                   for k, (key, e, f) in enumerate(zip(keys, ends, fine, strict=True))]
            chunks.append(lst)
        if hierarchy.admission != "all":
            for j in range(nl):
                cj = counts[j]
                for c in chunks[j]:
                    cj[c[0]] = cj.get(c[0], 0) + 1
        present = [[c[5] and c[0] in state[j].entries and not state[j].entries[c[0]].stale
                    for c in chunks[j]] for j in range(nl)]
        # serve the prefix: each position from the fastest level holding it
        x = 0
        segments = []  # (start, end, level, chunk index)
        while x < n:
            for j in range(nl):
                k = x // levels[j].chunk_tokens
                if k < len(chunks[j]) and present[j][k]:
                    end = chunks[j][k][2]
                    segments.append((x, end, j, k))
                    x = end
                    break
            else:
                break
        served = x
        loaded = [set() for _ in range(nl)]
        for s0, s1, j, k in segments:
            rec[f"served_tokens_{names[j]}"][r] += s1 - s0
            rec[f"read_bytes_{names[j]}"][r] += int(round(bpt[m] * (s1 - s0)))
            loaded[j].add(k)
        for j in range(nl):
            rec[f"loads_{names[j]}"][r] = len(loaded[j])
            if j > 0 and loaded[j]:
                load_s[r] += levels[j].latency_s * len(loaded[j]) + \
                    rec[f"read_bytes_{names[j]}"][r] / levels[j].read_bytes_per_s
        rec["hit_tokens"][r] = served
        rec["missed_tokens"][r] = n - served

        seg_starts = [sg[0] for sg in segments]
        seg_levels = [sg[2] for sg in segments]

        def from_slower(j: int, s0: int, s1: int, starts=seg_starts, lvls=seg_levels) -> bool:
            """Were all of [s0, s1) (inside the served prefix) served from levels slower than j?"""
            lo = bisect_right(starts, s0) - 1
            hi = bisect_left(starts, s1)
            return min(lvls[lo:hi]) > j

        # write / touch / promote
        if hierarchy.placement == "inclusive":
            for j in range(nl):
                for key, s0, s1, size, mask, storable in chunks[j]:
                    if key in state[j].entries:  # current state: earlier chunks may have evicted it
                        state[j].touch(key, t)
                        continue
                    if not storable:
                        continue
                    promo = s1 <= served and from_slower(j, s0, s1)
                    if j > 0 and (not admitted(j, key) or (promo and not hierarchy.promote_on_hit)):
                        continue
                    place(j, key, _Entry(size, m, mask, t), r, "promote" if promo else "write")
        else:  # exclusive: one chunk list (equal chunk sizes)
            for key, _s0, _s1, size, mask, storable in chunks[0]:
                where = next((j for j in range(nl) if key in state[j].entries), None)
                if where == 0:
                    state[0].touch(key, t)
                elif where is not None and hierarchy.promote_on_hit:
                    e = state[where]._drop(key)
                    e.t = t
                    place(0, key, e, r, "promote")
                elif where is not None:
                    state[where].touch(key, t)
                elif storable:
                    place(0, key, _Entry(size, m, mask, t), r, "write")
        # prompt components (block tags)
        ends = np.cumsum(tok_f[fa:fb])
        starts = ends - tok_f[fa:fb]
        hit_tok = np.clip(np.minimum(ends, served) - starts, 0, None)
        codes = tags[fa:fb].astype(np.int64) if has_tags else np.zeros(fb - fa, dtype=np.int64)
        np.add.at(comp_in, codes, tok_f[fa:fb])
        np.add.at(comp_hit, codes, hit_tok)
    end_t = float(trace.arrival_s[-1]) if n_req else 0.0
    while ei < len(all_events):
        apply(all_events[ei], n_req)
        snapshot(all_events[ei].time_s)
        ei += 1
    snapshot(max(end_t, all_events[-1].time_s if all_events else end_t))

    records = pd.DataFrame({
        "request": np.arange(n_req, dtype=np.int64), "arrival_s": trace.arrival_s,
        "model": np.array(trace.models, dtype=object)[trace.model_index.astype(np.int64)],
        "input_tokens": trace.input_tokens, **rec, "load_s": load_s})
    components = pd.DataFrame({"component": list(TAG_NAMES), "input_tokens": comp_in,
                               "hit_tokens": comp_hit})
    components = components[components.input_tokens > 0].reset_index(drop=True)
    components["hit_ratio"] = components.hit_tokens / components.input_tokens
    total_in = int(trace.input_tokens.sum())
    summary = {
        "requests": n_req, "input_tokens": total_in,
        "hit_tokens": int(rec["hit_tokens"].sum()),
        "token_hit_ratio": float(rec["hit_tokens"].sum() / total_in) if total_in else 0.0,
        **{f"served_tokens_{nm}": int(rec[f"served_tokens_{nm}"].sum()) for nm in names},
        **{f"read_bytes_{nm}": int(rec[f"read_bytes_{nm}"].sum()) for nm in names},
        **{f"written_bytes_{nm}": int(rec[f"written_bytes_{nm}"].sum()) for nm in names},
        "promoted_bytes": int(rec["promoted_bytes"].sum()),
        "demoted_bytes": int(rec["demoted_bytes"].sum()),
        "evicted_bytes": int(rec["evicted_bytes"].sum()),
        "evictions": totals["evictions"], "expirations": totals["expirations"],
        **{f"final_used_bytes_{nm}": state[i].used for i, nm in enumerate(names)},
        **{f"final_stale_bytes_{nm}": state[i].stale for i, nm in enumerate(names)},
        "storage_usd_per_month": float(sum(
            (lv.capacity_bytes or 0) / 1024**3 * lv.price_usd_per_gib_month for lv in levels)),
        "placement": hierarchy.placement, "admission": hierarchy.admission,
        "approximate_levels": [nm for nm, a in zip(names, approx, strict=True) if a],
    }
    return LevelsResult(records=records, timeline=pd.DataFrame(timeline),
                        bytes_by_model=pd.DataFrame(by_model, columns=["sample", "time_s", "level", "model", "bytes"]),
                        components=components,
                        events=pd.DataFrame(applied, columns=["time_s", "kind", "applied_at_s", "params"]),
                        summary=summary)
