"""One storage level's state: the cache state machine plus a level's own rules.

The recency order, sizes, stamps and bytes by model are ``simkv.cache.statemachine.LruTtl``
(the model is the entry's group).  A level adds its capacity and TTL, per-model quotas (a
model over its quota evicts *its* least recently used entries first), and stale bytes: an entry
whose prompt component changed (``template_change``) is never served again but keeps its room
until evicted, expired or reset.  What happens to an evicted entry (dropped, or demoted a level
down) is the hierarchy's movement rule, so ``insert`` and ``shrink`` return the victims.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from simkv.cache.statemachine import LruTtl


@dataclass(slots=True)
class Entry:
    """An entry as it moves between levels: bytes, model, prompt-component mask, stamp."""

    size: int
    model: int
    mask: int
    t: float
    stale: bool = False


Victims = list[tuple[Hashable, Entry]]


class LevelState:
    """One level: an LRU/TTL cache with a capacity, per-model quotas and stale bytes."""

    def __init__(self, capacity: int | None, ttl: float | None, quotas: dict[int, int]) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self.quotas = dict(quotas)
        self.lru = LruTtl()
        self._slot_of = self.lru.slot_of  # the hierarchy asks ``in`` ~2x per block access
        self.mask: dict[Hashable, int] = {}
        self.stale_keys: set[Hashable] = set()
        self.stale = 0

    # ---- views the hierarchy reads
    @property
    def used(self) -> int:
        return self.lru.used

    @property
    def by_model(self) -> dict[int, int]:
        return self.lru.by_group

    def __len__(self) -> int:
        return len(self.lru.slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def is_stale(self, key: Hashable) -> bool:
        return key in self.stale_keys

    # ---- state machine steps
    def drop(self, key: Hashable) -> Entry:
        _, size, model, t = self.lru.drop_entry(key)
        e = Entry(size, model, self.mask.pop(key), t, key in self.stale_keys)
        if e.stale:
            self.stale_keys.discard(key)
            self.stale -= e.size
        return e

    def touch(self, key: Hashable, t: float) -> None:
        self.lru.touch_key(key, t)

    def fits(self, e: Entry) -> bool:
        q = self.quotas.get(e.model)
        return (self.capacity is None or e.size <= self.capacity) and (q is None or e.size <= q)

    def _evict_model(self, model: int, limit: int, extra: int, out: Victims) -> None:
        while self.by_model.get(model, 0) + extra > limit:
            victim = self.lru.lru_key(model)
            out.append((victim, self.drop(victim)))

    def _evict_capacity(self, extra: int, out: Victims) -> None:
        cap, lru = self.capacity, self.lru
        if cap is None:
            return
        key_at, nxt = lru.key_at, lru.nxt
        while lru.used + extra > cap:
            victim = key_at[nxt.item(0)]  # lru.lru_key(), without two calls per eviction
            out.append((victim, self.drop(victim)))

    def insert(self, key: Hashable, e: Entry) -> Victims:
        """Add ``e`` (the caller checked ``fits``); returns the entries evicted to make room.

        A stale entry moved here stays stale but, as before, does not add to ``stale``."""
        out: Victims = []
        q = self.quotas.get(e.model) if self.quotas else None
        if q is not None:
            self._evict_model(e.model, q, e.size, out)
        self._evict_capacity(e.size, out)
        self.lru.insert(key, e.size, e.model, e.t)
        self.mask[key] = e.mask
        if e.stale:
            self.stale_keys.add(key)
        return out

    def shrink(self) -> Victims:
        """Evict to fit a lowered capacity or quota."""
        out: Victims = []
        for m, q in self.quotas.items():
            self._evict_model(m, q, 0, out)
        self._evict_capacity(0, out)
        return out

    def expire(self, t: float) -> int:
        if self.ttl is None:
            return 0
        keys = self.lru.expired_keys(t, self.ttl)
        for key in keys:
            self.drop(key)
        return len(keys)

    def clear(self, model: int | None = None) -> int:
        """Drop every entry (of ``model``); returns how many."""
        keys = self.lru.keys_of_group(model)
        for key in keys:
            self.drop(key)
        return len(keys)

    def mark_stale(self, is_hit: Callable[[int], bool]) -> None:
        """Entries whose component mask ``is_hit`` become stale (their bytes stay used)."""
        for key in self.lru.keys():
            if key not in self.stale_keys and is_hit(self.mask[key]):
                self.stale_keys.add(key)
                self.stale += int(self.lru.size[self.lru.slot_of[key]])

