"""The LRU/TTL state machine that simkv's per-access cache models compose.

One layout, written once: the recency order of a cache is an intrusive doubly linked list over
*slots* held in two flat ``int64`` arrays, ``prev`` and ``nxt``.  Slot 0 is the sentinel, so
``nxt[0]`` is the least recently used slot and ``prev[0]`` the most recently used one; a slot's
other state (size, stamp, group, flags) lives in parallel arrays indexed by the same slot.  The
operations are small numba functions over those arrays (``unlink``, ``link_mru``,
``link_lru``, ``move_mru``, ``lru_if_expired``, ``link_range_mru``, batch forms ``take_slots``,
``pop_lru_slots``, ``append_slots``, and ``expired_slots``, ``first_in_group``, ``slots_matching``), so a
compiled kernel can call them inline and a Python-level model can call them one at a time.

Two Python wrappers own the arrays (growing them as slots are added):

- ``SlotOrder``: an ordered set of slots (vLLM's free-block queue is one: pop the head,
  append to the tail, prepend to the head, take out from the middle);
- ``LruTtl``: keyed entries with a size, a stamp (last touch or write time) and a group
  (e.g. the model, for per-model quotas), with used bytes in total and by group.  Touch,
  insert, drop, the least recently used entry (of a group), the entries past a TTL.  Which
  entry to evict and what happens to it (drop, demote a level down) is the caller's policy:
  storage levels (``simkv.sizing.levelstate``) add capacities, quotas and stale bytes; the
  vLLM block pool (``simkv.cache.vllm_policy``) adds physical blocks and hash duplicates.

The engine's compiled kernels (``simkv.cache.kernels``: LRU, FIFO and LFU's stamp list) call
the single-slot primitives inside their loops, an object's slot being its dense id + 1; those
primitives are ``inline="always"`` so a kernel pays no call for them.  This is the one list
implementation in the tree (tests/unit/test_architecture.py checks it); see
docs/architecture.md.  numba caches a kernel by its own file, so after editing this module clear
``.cache/numba`` or the kernels keep the primitives they were compiled with.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator

import numba
import numpy as np

SENTINEL = 0


@numba.njit(cache=True, inline="always")
def unlink(prev, nxt, o):  # pragma: no cover - compiled
    """Take slot ``o`` out of the list."""
    p = prev[o]
    q = nxt[o]
    nxt[p] = q
    prev[q] = p


@numba.njit(cache=True, inline="always")
def link_mru(prev, nxt, o):  # pragma: no cover - compiled
    """Put slot ``o`` (not in the list) at the most recently used end."""
    last = prev[0]
    prev[o] = last
    nxt[o] = 0
    nxt[last] = o
    prev[0] = o


@numba.njit(cache=True, inline="always")
def link_lru(prev, nxt, o):  # pragma: no cover - compiled
    """Put slot ``o`` (not in the list) at the least recently used end (evicted first)."""
    first = nxt[0]
    nxt[o] = first
    prev[o] = 0
    prev[first] = o
    nxt[0] = o


@numba.njit(cache=True, inline="always")
def move_mru(prev, nxt, o):  # pragma: no cover - compiled
    """A touch: move slot ``o`` (in the list) to the most recently used end.

    Unlinking the most recent slot and linking it again leaves the list as it was, so there is
    no early return for that case: inlined into a kernel's loop, a branch out of the function
    made the engine's LRU kernel 3x slower (measured with numba 0.68)."""
    unlink(prev, nxt, o)
    link_mru(prev, nxt, o)


@numba.njit(cache=True)
def link_range_mru(prev, nxt, first, stop):  # pragma: no cover - compiled
    """Append slots ``first..stop-1`` (none in the list), in that order, at the MRU end."""
    for o in range(first, stop):
        last = prev[0]
        prev[o] = last
        nxt[o] = 0
        nxt[last] = o
        prev[0] = o


@numba.njit(cache=True)
def take_slots(prev, nxt, member, slots):  # pragma: no cover - compiled
    """Take each of ``slots`` out of the list if it is in; returns how many were."""
    n = 0
    for o in slots:
        if member[o]:
            unlink(prev, nxt, o)
            member[o] = False
            n += 1
    return n


@numba.njit(cache=True)
def pop_lru_slots(prev, nxt, member, k):  # pragma: no cover - compiled
    """Pop up to ``k`` slots from the least recently used end, in order."""
    out = []
    while len(out) < k and nxt[0] != 0:
        o = nxt[0]
        unlink(prev, nxt, o)
        member[o] = False
        out.append(o)
    return np.array(out, dtype=np.int64)


@numba.njit(cache=True)
def append_slots(prev, nxt, member, slots, at_lru):  # pragma: no cover - compiled
    """Put each of ``slots`` in turn at one end (``at_lru``: the least recent end, moving a slot
    already in; else the most recent end, leaving a slot already in where it is)."""
    n = 0
    for o in slots:
        if member[o]:
            if not at_lru:
                continue
            unlink(prev, nxt, o)
            n -= 1
        if at_lru:
            link_lru(prev, nxt, o)
        else:
            link_mru(prev, nxt, o)
        member[o] = True
        n += 1
    return n


@numba.njit(cache=True)
def expired_slots(nxt, stamp, t, ttl):  # pragma: no cover - compiled
    """Slots, least recent first, whose stamp is ``ttl`` or more before ``t``.

    The whole list is scanned: entries moved between caches keep their stamps, so stamps are
    not monotone along the recency order."""
    out = []
    o = nxt[0]
    while o != 0:
        if t - stamp[o] >= ttl:
            out.append(o)
        o = nxt[o]
    return np.array(out, dtype=np.int64)


@numba.njit(cache=True, inline="always")
def lru_if_expired(nxt, stamp, t, ttl):  # pragma: no cover - compiled
    """The least recently used slot if its stamp is ``ttl`` or more before ``t``, else 0.

    The TTL-expiry step of a list whose stamps rise from the least recent end (a list kept
    in stamp order): calling it until it returns 0 drops exactly the expired slots."""
    o = nxt[0]
    if o != 0 and t - stamp[o] < ttl:
        o = 0
    return o


@numba.njit(cache=True)
def first_in_group(nxt, group, g):  # pragma: no cover - compiled
    """The least recently used slot of group ``g`` (0 when the group has none)."""
    o = nxt[0]
    while o != 0 and group[o] != g:
        o = nxt[o]
    return o


@numba.njit(cache=True)
def slots_matching(nxt, group, g):  # pragma: no cover - compiled
    """Slots of group ``g`` (every slot when ``g < 0``), least recent first."""
    out = []
    o = nxt[0]
    while o != 0:
        if g < 0 or group[o] == g:
            out.append(o)
        o = nxt[o]
    return np.array(out, dtype=np.int64)


class SlotOrder:
    """An ordered set of slots ``1..`` (least recent first) over growable ``prev``/``nxt``."""

    def __init__(self, slots: int = 0) -> None:
        n = max(int(slots) + 1, 16)
        self.prev = np.zeros(n, dtype=np.int64)
        self.nxt = np.zeros(n, dtype=np.int64)
        self.member = np.zeros(n, dtype=np.bool_)
        self.count = 0

    def reserve(self, slot: int) -> None:
        """Make room for slots up to ``slot`` (the batch forms do not grow the arrays)."""
        self._grow(slot)

    def _grow(self, slot: int) -> None:
        n = self.prev.shape[0]
        if slot < n:
            return
        size = max(2 * n, slot + 1)
        for name in self._arrays():
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[:n] = old
            setattr(self, name, new)

    def _arrays(self) -> tuple[str, ...]:
        return ("prev", "nxt", "member")

    def __len__(self) -> int:
        return self.count

    def __contains__(self, slot: int) -> bool:
        return slot < self.member.shape[0] and bool(self.member[slot])

    def push_mru(self, slot: int) -> None:
        self._grow(slot)
        link_mru(self.prev, self.nxt, slot)
        self.member[slot] = True
        self.count += 1

    def fill(self, first: int, stop: int) -> None:
        """Append slots ``first..stop-1`` (none present) at the most recent end, in order."""
        if stop <= first:
            return
        self._grow(stop - 1)
        link_range_mru(self.prev, self.nxt, first, stop)
        self.member[first:stop] = True
        self.count += stop - first

    def push_lru(self, slot: int) -> None:
        self._grow(slot)
        link_lru(self.prev, self.nxt, slot)
        self.member[slot] = True
        self.count += 1

    def remove(self, slot: int) -> None:
        unlink(self.prev, self.nxt, slot)
        self.member[slot] = False
        self.count -= 1

    def touch(self, slot: int) -> None:
        move_mru(self.prev, self.nxt, slot)

    # batch forms: one compiled call for many slots
    def take_many(self, slots: np.ndarray) -> None:
        self.count -= take_slots(self.prev, self.nxt, self.member, slots)

    def pop_many(self, k: int) -> np.ndarray:
        out = pop_lru_slots(self.prev, self.nxt, self.member, k)
        self.count -= out.shape[0]
        return out

    def put_many(self, slots: np.ndarray, *, at_lru: bool) -> None:
        """Put ``slots`` at one end (see ``append_slots``); they must be below ``reserve``."""
        self.count += append_slots(self.prev, self.nxt, self.member, slots, at_lru)

    def lru(self) -> int:
        """The least recently used slot (``SENTINEL`` when empty)."""
        return self.nxt.item(SENTINEL)

    def pop_lru(self) -> int:
        slot = self.lru()
        self.remove(slot)
        return slot

    def __iter__(self) -> Iterator[int]:
        o = int(self.nxt[SENTINEL])
        while o != SENTINEL:
            yield o
            o = int(self.nxt[o])


class LruTtl(SlotOrder):
    """Keyed entries in recency order with a size, a stamp and a group, and the bytes they use.

    Keys are any hashables; each live key owns a slot (freed slots are reused).  ``used`` and
    ``by_group`` count sizes (a group once seen stays in ``by_group``, at 0 when emptied).
    """

    def __init__(self) -> None:
        super().__init__()
        self.size = np.zeros(self.prev.shape[0], dtype=np.int64)
        self.stamp = np.zeros(self.prev.shape[0], dtype=np.float64)
        self.group = np.zeros(self.prev.shape[0], dtype=np.int64)
        self.slot_of: dict[Hashable, int] = {}
        self.key_at: dict[int, Hashable] = {}
        self._free: list[int] = []
        self._next_slot = 1
        self.used = 0
        self.by_group: dict[int, int] = {}

    def _arrays(self) -> tuple[str, ...]:
        return ("prev", "nxt", "member", "size", "stamp", "group")

    def __contains__(self, key: object) -> bool:
        return key in self.slot_of

    def keys(self) -> Iterator[Hashable]:
        """Keys, least recently used first."""
        return (self.key_at[o] for o in SlotOrder.__iter__(self))

    def __iter__(self) -> Iterator[Hashable]:
        """A container of keys: iterating gives the keys (least recent first), like ``in``."""
        return self.keys()

    def touch_key(self, key: Hashable, t: float) -> int:
        slot = self.slot_of[key]
        move_mru(self.prev, self.nxt, slot)
        self.stamp[slot] = t
        return slot

    def insert(self, key: Hashable, size: int, group: int, t: float) -> int:
        """Add ``key`` (absent) as the most recently used entry; returns its slot."""
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._next_slot
            self._next_slot += 1
            if slot >= self.prev.shape[0]:
                self._grow(slot)
        link_mru(self.prev, self.nxt, slot)
        self.member[slot] = True
        self.count += 1
        self.size[slot] = size
        self.stamp[slot] = t
        self.group[slot] = group
        self.slot_of[key] = slot
        self.key_at[slot] = key
        self.used += size
        self.by_group[group] = self.by_group.get(group, 0) + size
        return slot

    def drop(self, key: Hashable) -> int:
        """Remove ``key``; returns the slot it had (its arrays keep the values until reused)."""
        return self.drop_entry(key)[0]

    def drop_entry(self, key: Hashable) -> tuple[int, int, int, float]:
        """Remove ``key``; returns its (slot, size, group, stamp) as Python numbers."""
        slot = self.slot_of.pop(key)
        del self.key_at[slot]
        unlink(self.prev, self.nxt, slot)
        self.member[slot] = False
        self.count -= 1
        self._free.append(slot)
        size = self.size.item(slot)  # .item: half the cost of int(a[i]) (a Python hot path)
        group = self.group.item(slot)
        self.used -= size
        self.by_group[group] -= size
        return slot, size, group, self.stamp.item(slot)

    def lru_key(self, group: int | None = None) -> Hashable:
        """The least recently used key (of ``group``); the cache must hold one."""
        slot = self.lru() if group is None else int(first_in_group(self.nxt, self.group, group))
        return self.key_at[slot]

    def expired_keys(self, t: float, ttl: float) -> list[Hashable]:
        return [self.key_at[int(o)] for o in expired_slots(self.nxt, self.stamp, t, ttl)]

    def keys_of_group(self, group: int | None) -> list[Hashable]:
        g = -1 if group is None else group
        return [self.key_at[int(o)] for o in slots_matching(self.nxt, self.group, g)]
