"""Compiled kernels of the streamed Belady bound (``simkv.sizing.belady``), block by block.

The whole-stream kernels (``simkv.sizing.kernels.next_use`` / ``belady_hits``) hold every
access at once.  These take one block of a spilled stream and carry their state to the next:

- :func:`next_use_block` walks a block backwards, with one "next position" per object, so the
  blocks are fed from the last to the first;
- :func:`min_block` runs MIN with bypass at one capacity over a block, carrying the cached
  set (``key[o]``: the next use of cached object ``o``, -1 if not cached) and a lazy max-heap
  of (next use, object).  A hit re-keys an object and leaves a stale entry behind; when the
  heap array is full the stale entries are dropped and the rest re-heapified, so the heap
  never holds more than its fixed size (twice the capacity plus some), whatever the trace.

Next uses are distinct (the position of the next access, or ``n + j`` when none), so the
farthest live entry is unique: the heap's layout, and so its compaction, cannot change a
result.  The heap code is kept here (not shared with ``kernels.py``) because numba's disk
cache keys a kernel on its own file only.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def next_use_block(ids, start, n, seen, out):  # pragma: no cover - compiled
    """Next use of each access of ``ids`` (the accesses ``start .. start+len-1`` of ``n``).

    ``seen[o]``: position of the earliest access to ``o`` after this block (-1: none), updated
    for the block before.  ``out[j]`` = that position, or ``n + start + j`` when there is none.
    """
    for j in range(ids.shape[0] - 1, -1, -1):
        o = ids[j]
        p = start + j
        s = seen[o]
        out[j] = s if s >= 0 else n + p
        seen[o] = p


@numba.njit(cache=True, nogil=True)
def _sift_up(hk, ho, i):  # pragma: no cover - compiled
    while i > 0:
        p = (i - 1) >> 1
        if hk[p] < hk[i]:
            hk[p], hk[i] = hk[i], hk[p]
            ho[p], ho[i] = ho[i], ho[p]
            i = p
        else:
            break


@numba.njit(cache=True, nogil=True)
def _sift_down(hk, ho, i, n):  # pragma: no cover - compiled
    while True:
        left = 2 * i + 1
        right = left + 1
        b = i
        if left < n and hk[left] > hk[b]:
            b = left
        if right < n and hk[right] > hk[b]:
            b = right
        if b == i:
            break
        hk[b], hk[i] = hk[i], hk[b]
        ho[b], ho[i] = ho[i], ho[b]
        i = b


@numba.njit(cache=True, nogil=True)
def compact_heap(hk, ho, hn, key):  # pragma: no cover - compiled
    """Drop the stale entries (``key[o] != k``) and re-heapify; returns the new size."""
    w = 0
    for i in range(hn):
        if key[ho[i]] == hk[i]:
            hk[w] = hk[i]
            ho[w] = ho[i]
            w += 1
    for i in range((w >> 1) - 1, -1, -1):
        _sift_down(hk, ho, i, w)
    return w


@numba.njit(cache=True, nogil=True)
def min_block(ids, nxt, capacity, key, hk, ho, scal):  # pragma: no cover - compiled
    """Hits of MIN with bypass at ``capacity`` (>= 1) blocks over one block of the stream.

    Carried: ``key`` (per object, -1 = not cached), the heap ``hk``/``ho`` (fixed size, more
    than ``capacity`` entries), ``scal`` = [heap size, cached count].  Same decisions as
    ``simkv.sizing.kernels.belady_hits``: hit if cached; else admit while there is room; else
    evict the farthest next use if it is farther than this access's own, otherwise bypass.
    """
    hn = scal[0]
    count = scal[1]
    size = hk.shape[0]
    hits = 0
    for j in range(ids.shape[0]):
        o = ids[j]
        nu = nxt[j]
        if key[o] >= 0:
            hits += 1
        elif count < capacity:
            count += 1
        else:
            while True:  # the live entry with the farthest next use
                top_k = hk[0]
                top_o = ho[0]
                if key[top_o] == top_k:
                    break
                hn -= 1
                hk[0] = hk[hn]
                ho[0] = ho[hn]
                _sift_down(hk, ho, 0, hn)
            if top_k > nu:
                hn -= 1
                hk[0] = hk[hn]
                ho[0] = ho[hn]
                _sift_down(hk, ho, 0, hn)
                key[top_o] = -1
            else:
                continue  # bypass: o's own next use is the farthest
        key[o] = nu
        if hn == size:
            hn = compact_heap(hk, ho, hn, key)  # live entries: count <= capacity < size
        hk[hn] = nu
        ho[hn] = o
        _sift_up(hk, ho, hn)
        hn += 1
    scal[0] = hn
    scal[1] = count
    return hits
