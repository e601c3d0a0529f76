"""Block hash -> dense id, carried across the chunks of a stream.

Kernels index per-object state by dense ids (0..U-1, in order of first appearance), so every
stream maps its 64-bit keys once.  The table is open addressing with linear probing and is
sized to the number of *unique* keys seen so far (doubled and rehashed when 60% full), never to the number of accesses: a month of traffic with 1.3 billion accesses
to 30 million blocks needs a table of 2^26 slots, not 2^31.  Ids are assigned in order of
first appearance over the whole stream, whatever the chunking, so results do not depend on it.
"""

from __future__ import annotations

import numba
import numpy as np

from simkv import guard
from simkv.hashing import fibonacci_hash

_EMPTY = -1
#: smallest table (slots); grows by doubling
MIN_SLOTS = 1 << 10
#: load factor at which the table doubles (linear probing stays short below it)
MAX_LOAD = 0.6
#: bytes a slot takes: a uint64 key and an int32 id
SLOT_BYTES = 12
#: ids are int32 in the table (the largest id a 2^32-slot table could hold at MAX_LOAD)
MAX_IDS = 2**31 - 1


@numba.njit(cache=True)
def _lookup_insert(tkeys, tvals, keys, out, start, next_id, limit):  # pragma: no cover - compiled
    """Map ``keys[start:]`` through the table, inserting new keys, until ``limit`` ids exist.

    Returns (the index where it stopped, the next free id).
    """
    mask = np.uint64(tkeys.shape[0] - 1)
    for i in range(start, keys.shape[0]):
        if next_id >= limit:
            return i, next_id
        k = keys[i]
        slot = fibonacci_hash(k) & mask
        while True:
            v = tvals[slot]
            if v == _EMPTY:
                tkeys[slot] = k
                tvals[slot] = next_id
                out[i] = next_id
                next_id += 1
                break
            if tkeys[slot] == k:
                out[i] = v
                break
            slot = (slot + np.uint64(1)) & mask
    return keys.shape[0], next_id


@numba.njit(cache=True)
def _rehash(old_keys, old_vals, new_keys, new_vals):  # pragma: no cover - compiled
    mask = np.uint64(new_keys.shape[0] - 1)
    for i in range(old_keys.shape[0]):
        v = old_vals[i]
        if v == _EMPTY:
            continue
        k = old_keys[i]
        slot = fibonacci_hash(k) & mask
        while new_vals[slot] != _EMPTY:
            slot = (slot + np.uint64(1)) & mask
        new_keys[slot] = k
        new_vals[slot] = v


class IdMap:
    """A growing key -> dense id table; ``map`` one chunk of keys after another."""

    def __init__(self) -> None:
        self.n_ids = 0
        self._keys = np.zeros(MIN_SLOTS, dtype=np.uint64)
        self._vals = np.full(MIN_SLOTS, _EMPTY, dtype=np.int32)  # 12 bytes a slot

    @property
    def slots(self) -> int:
        return int(self._keys.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._vals.nbytes)

    def _grow(self) -> None:
        size = 2 * self.slots
        # the table is per unique block: refuse it (--max-memory) rather than be killed
        guard.check(size * SLOT_BYTES, f"the id map of {self.n_ids:,} unique blocks "
                    f"({size:,} slots)")
        keys = np.zeros(size, dtype=np.uint64)
        vals = np.full(size, _EMPTY, dtype=np.int32)
        _rehash(self._keys, self._vals, keys, vals)
        self._keys, self._vals = keys, vals

    def map(self, keys: np.ndarray) -> np.ndarray:
        """Dense ids of ``keys`` (int64); unseen keys get the next ids in order."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        guard.check(self.slots * SLOT_BYTES + keys.size * 8,  # the table and this call's ids
                    f"the id map of {self.n_ids:,} unique blocks and {keys.size:,} new accesses")
        out = np.empty(keys.shape[0], dtype=np.int64)
        i = 0
        while True:
            limit = min(int(self.slots * MAX_LOAD), MAX_IDS)
            i, n = _lookup_insert(self._keys, self._vals, keys, out, i, self.n_ids, limit)
            self.n_ids = int(n)
            if i >= keys.shape[0]:
                return out
            if self.n_ids >= MAX_IDS:
                raise ValueError(f"more than {MAX_IDS} unique keys: too many for one id map")
            self._grow()


def densify(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids (first-appearance order) for an array of uint64 keys, and how many there are."""
    m = IdMap()
    ids = m.map(keys)
    return ids, m.n_ids
