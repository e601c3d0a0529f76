"""Kernel state carried from one chunk of a stream to the next, grown as objects appear.

Each holder owns the flat per-object arrays of one compiled kernel (``simkv.cache.kernels``)
and hands them to it chunk after chunk, so a stream's result does not depend on how it was
cut.  Arrays grow by doubling when a chunk brings objects past their size: memory is per
unique block seen so far, never per access.  The linked lists are the cache state machine's
(``simkv.cache.statemachine``): slot 0 is the sentinel and an object's slot is its dense id + 1,
so growing appends zeroed slots and no link moves.
"""

from __future__ import annotations

import numpy as np

from simkv.cache.kernels import run_lfu, run_list_policy

_MIN_OBJECTS = 1024


def _grow_size(have: int, need: int) -> int:
    size = max(have, _MIN_OBJECTS)
    while size < need:
        size *= 2
    return size


def _grow(a: np.ndarray, n: int, fill=0) -> np.ndarray:
    out = np.full(n, fill, dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


def _slots(a: np.ndarray, n_obj: int) -> np.ndarray:
    """``a`` (indexed by slot: dense id + 1, slot 0 the sentinel) grown to ``n_obj`` objects."""
    return _grow(a, n_obj + 1)


def _empty_links() -> np.ndarray:
    """An empty list: the sentinel alone (slot 0, linked to itself)."""
    return np.zeros(1, dtype=np.int64)


class ListState:
    """LRU / FIFO state: policy list, optional stamp list, presence, stamps, bytes used."""

    def __init__(self, *, lru: bool, ttl_s: float, from_write: bool, capacity: int) -> None:
        self.lru, self.ttl, self.from_write, self.capacity = lru, ttl_s, from_write, capacity
        self.separate = ttl_s >= 0 and lru == from_write
        self.n = 0
        self.prev, self.nxt = _empty_links(), _empty_links()
        self.eprev, self.enxt = _empty_links(), _empty_links()
        self.present = np.zeros(1, dtype=np.uint8)
        self.stamp = np.zeros(1, dtype=np.float64)
        self.scal = np.zeros(1, dtype=np.int64)

    def ensure(self, n_obj: int) -> None:
        if n_obj <= self.n:
            return
        n = _grow_size(self.n, n_obj)
        self.prev, self.nxt = _slots(self.prev, n), _slots(self.nxt, n)
        if self.separate:
            self.eprev, self.enxt = _slots(self.eprev, n), _slots(self.enxt, n)
        self.present = _slots(self.present, n)
        if self.ttl >= 0:
            self.stamp = _slots(self.stamp, n)
        self.n = n

    def run(self, ids, sizes, req_offsets, req_time_s, n_obj):
        self.ensure(n_obj)
        return run_list_policy(ids, sizes, req_offsets, req_time_s, self.capacity, self.ttl,
                               self.lru, self.from_write, self.prev, self.nxt, self.present,
                               self.eprev, self.enxt, self.stamp, self.scal)


class LfuState:
    """LFU state: presence, frequency, last use, the lazy heap, the stamp list."""

    def __init__(self, *, ttl_s: float, from_write: bool, capacity: int) -> None:
        self.ttl, self.from_write, self.capacity = ttl_s, from_write, capacity
        self.n = 0
        self.present = np.zeros(0, dtype=np.uint8)
        self.freq = np.zeros(0, dtype=np.int64)
        self.seq = np.zeros(0, dtype=np.int64)
        self.hf = self.hs = self.ho = np.zeros(0, dtype=np.int64)
        self.eprev, self.enxt = _empty_links(), _empty_links()
        self.stamp = np.zeros(1, dtype=np.float64)
        self.scal = np.zeros(4, dtype=np.int64)  # heap entries, present, bytes used, counter

    def ensure(self, n_obj: int) -> None:
        if n_obj <= self.n:
            return
        n = _grow_size(self.n, n_obj)
        self.present, self.freq, self.seq = (_grow(self.present, n), _grow(self.freq, n),
                                             _grow(self.seq, n))
        heap = 2 * (4 * n + 1024) + 16  # compacted to one entry per present object when full
        self.hf, self.hs, self.ho = _grow(self.hf, heap), _grow(self.hs, heap), _grow(self.ho, heap)
        if self.ttl >= 0:
            self.eprev, self.enxt = _slots(self.eprev, n), _slots(self.enxt, n)
            self.stamp = _slots(self.stamp, n)
        self.n = n

    def run(self, ids, sizes, req_offsets, req_time_s, n_obj):
        self.ensure(n_obj)
        return run_lfu(ids, sizes, req_offsets, req_time_s, self.capacity, self.ttl,
                       self.from_write, self.present, self.freq, self.seq, self.hf, self.hs,
                       self.ho, self.eprev, self.enxt, self.stamp, self.scal)
