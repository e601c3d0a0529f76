"""The mutable state of one ``simulate_levels`` run and the hierarchy's movement rules.

Each level is a ``LevelState`` (the cache state machine plus capacity, quotas, stale bytes);
what this module adds is how entries move between them: ``place`` writes into a level and
hands what that evicts to ``evicted``, which demotes it one level down (``demote_on_evict``,
levels of equal chunk size, admission permitting) or drops it.  Lifecycle event handlers
(``simkv.sizing.events``) act on a run through the same object.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from simkv.errors import InputError
from simkv.sizing.levels import Hierarchy, StorageLevel
from simkv.sizing.levelstate import Entry, LevelState, Victims
from simkv.trace.model import TAG_NAMES, Trace

#: per-request counters of the whole hierarchy, then those of each level (suffixed by name)
REQUEST_COLUMNS = ("hit_tokens", "missed_tokens", "promoted_bytes", "demoted_bytes",
                   "evicted_bytes")
LEVEL_COLUMNS = ("served_tokens", "read_bytes", "written_bytes", "loads")


def level_states(trace: Trace, hierarchy: Hierarchy, model_idx: dict[str, int]) -> list[LevelState]:
    """Empty states of the hierarchy's levels, quotas keyed by the trace's model index."""
    out = []
    for lv in hierarchy.levels:
        quotas = {}
        for m, q in lv.quotas_bytes:
            if m not in model_idx:
                raise InputError(f"quota for a model the trace does not use: {m!r}",
                                 where=f"levels.{lv.name}.quotas")
            quotas[model_idx[m]] = int(q)
        out.append(LevelState(lv.capacity_bytes, lv.ttl_s, quotas))
    return out


@dataclass
class LevelsRun:
    """Everything a request step or an event handler reads or changes.

    ``trace`` is the chunk being walked (the whole trace when it is one chunk); ``rec`` and
    ``load_s`` hold that chunk's per-request counters."""

    trace: Trace
    hierarchy: Hierarchy
    model_idx: dict[str, int]
    state: list[LevelState]
    rec: dict[str, np.ndarray] = field(default_factory=dict)
    versions: dict[str | None, int] = field(default_factory=dict)
    timeline: list[dict] = field(default_factory=list)
    by_model: list[dict] = field(default_factory=list)
    applied: list[dict] = field(default_factory=list)
    expirations: int = 0
    evictions: int = 0

    def __post_init__(self) -> None:
        levels = self.hierarchy.levels
        self.names = [lv.name for lv in levels]
        self.counts: list[dict[Hashable, int]] = [dict() for _ in levels]  # admission counts
        self.comp_in = np.zeros(len(TAG_NAMES), dtype=np.int64)
        self.comp_hit = np.zeros(len(TAG_NAMES), dtype=np.int64)
        self.start_chunk(self.trace)

    def start_chunk(self, chunk: Trace) -> None:
        """Walk ``chunk`` next: fresh per-request counters sized to it (request indices ``r``
        are the chunk's own); level states, admission counts and totals carry over."""
        self.trace = chunk
        n = chunk.n_requests
        self.rec = {k: np.zeros(n, dtype=np.int64) for k in REQUEST_COLUMNS}
        for nm in self.names:
            for col in LEVEL_COLUMNS:
                self.rec[f"{col}_{nm}"] = np.zeros(n, dtype=np.int64)
        self.load_s = np.zeros(n, dtype=np.float64)

    @property
    def levels(self) -> tuple[StorageLevel, ...]:
        return self.hierarchy.levels

    @property
    def has_tags(self) -> bool:
        return self.trace.block_tags is not None

    def level_of(self, name: str | None) -> LevelState:
        """The state of the level an event names (default: the persistent bucket)."""
        return self.state[self.hierarchy.index(name, where="event.level")]

    def count_evicted(self, victims: Victims, r: int) -> None:
        """Bytes an event evicted, charged to the request it applies before (or the last of the
        chunk: events after a chunk's last request apply before the next chunk's first, so
        only those after the trace's last request land here)."""
        for _key, e in victims:
            self.rec["evicted_bytes"][min(r, self.trace.n_requests - 1)] += e.size

    # ---- movement rules
    def admitted(self, j: int, key: Hashable) -> bool:
        return j == 0 or self.hierarchy.admission == "all" or self.counts[j].get(key, 0) >= 2

    def place(self, j: int, key: Hashable, e: Entry, r: int, kind: str) -> bool:
        """Insert into level ``j`` (demoting what it evicts); False if it does not fit."""
        s = self.state[j]
        if not s.fits(e):
            return False
        for vk, ve in s.insert(key, e):
            self.evicted(j, vk, ve, r)
        self.rec[f"written_bytes_{self.names[j]}"][r] += e.size
        if kind in ("demote", "promote"):
            self.rec[f"{kind}d_bytes"][r] += e.size
        return True

    def evicted(self, j: int, key: Hashable, e: Entry, r: int) -> None:
        self.evictions += 1
        down = j + 1
        levels = self.levels
        if (self.hierarchy.demote_on_evict and not e.stale and down < len(levels)
                and levels[down].chunk_tokens == levels[j].chunk_tokens
                and key not in self.state[down] and self.admitted(down, key)):
            if self.place(down, key, Entry(e.size, e.model, e.mask, e.t), r, "demote"):
                return
        self.rec["evicted_bytes"][r] += e.size

    # ---- the storage view
    def snapshot(self, t: float) -> None:
        sample = len(self.timeline) // len(self.levels)
        for lv, s in zip(self.levels, self.state, strict=True):
            self.timeline.append({"sample": sample, "time_s": t, "level": lv.name,
                                  "used_bytes": s.used, "capacity_bytes": s.capacity,
                                  "entries": len(s),
                                  "utilization": (s.used / s.capacity) if s.capacity else None,
                                  "stale_bytes": s.stale})
            for m, b in sorted(s.by_model.items()):
                self.by_model.append({"sample": sample, "time_s": t, "level": lv.name,
                                      "model": self.trace.models[m], "bytes": b})
