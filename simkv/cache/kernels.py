"""Compiled cache kernels (numba, cached on disk): LRU, FIFO and LFU over a dense access stream.

Each kernel walks requests in arrival order.  At a request's arrival time ``t`` it first drops
entries whose TTL has run out (``t - stamp >= ttl``), then touches the request's blocks in
chain order: a present block is a hit (LRU moves it to the front; ``refresh_on_hit`` resets its
stamp), an absent one is inserted after evicting from the policy's victim end until it fits.
An object larger than the whole capacity is never admitted (as in libCacheSim).

Per-object state is flat arrays, held by ``simkv.cache.carry`` and carried from one chunk of
the stream to the next (grown as new objects appear), so a kernel call is one chunk.  The
policy order is the cache state machine's list (``simkv.cache.statemachine``: slot 0 is the
sentinel, an object's slot is its dense id + 1, ``unlink`` / ``link_mru`` / ``move_mru`` /
``lru_if_expired`` are the same compiled functions the storage levels, the vLLM block pool and
the LMCache L1 use), so this module writes no list operation of its own.  When the TTL order
differs from the policy order (LRU with ``from_write``, FIFO with ``refresh_on_hit``, LFU) a
second list keeps entries in stamp order so expiry stays O(1) per entry.  ``simkv.cache.reference`` is the slow,
obviously-correct twin these are tested against.
"""

from __future__ import annotations

import numba
import numpy as np

from simkv.cache.statemachine import link_mru, lru_if_expired, move_mru, unlink


@numba.njit(cache=True)
def run_list_policy(ids, sizes, req_offsets, req_time, capacity, ttl, lru, from_write,
                    prev, nxt, present, eprev, enxt, stamp, scal):  # pragma: no cover - compiled
    """LRU (``lru=True``) or FIFO over one chunk; ``capacity < 0`` is unlimited, ``ttl < 0`` none.

    The state (``simkv.cache.carry.ListState``) carries over from the previous chunk: the
    policy list ``prev``/``nxt``, ``present`` and ``stamp`` by slot (dense id + 1; slot 0 is the
    sentinel), the stamp-ordered list ``eprev``/``enxt`` (length 1 when not needed) and
    ``scal[0]`` (bytes used).  Returns (hit per access uint8, evictions per request,
    expirations per request).
    """
    n_req = req_offsets.shape[0] - 1
    hit = np.zeros(ids.shape[0], dtype=np.uint8)
    evictions = np.zeros(n_req, dtype=np.int64)
    expirations = np.zeros(n_req, dtype=np.int64)
    use_ttl = ttl >= 0.0
    # a separate stamp-ordered list is needed only when stamp order != policy order
    separate = use_ttl and (lru == from_write)
    used = scal[0]
    for r in range(n_req):
        t = req_time[r]
        if use_ttl:
            while True:
                if separate:
                    victim = lru_if_expired(enxt, stamp, t, ttl)
                else:
                    victim = lru_if_expired(nxt, stamp, t, ttl)
                if victim == 0:
                    break
                unlink(prev, nxt, victim)
                if separate:
                    unlink(eprev, enxt, victim)
                present[victim] = 0
                used -= sizes[victim - 1]
                expirations[r] += 1
        for j in range(req_offsets[r], req_offsets[r + 1]):
            o = ids[j] + 1
            if present[o]:
                hit[j] = 1
                if lru:
                    move_mru(prev, nxt, o)
                if use_ttl and not from_write:
                    stamp[o] = t
                    if separate:
                        move_mru(eprev, enxt, o)
                continue
            size = sizes[o - 1]
            if capacity >= 0:
                if size > capacity:
                    continue
                while used + size > capacity:
                    victim = nxt[0]
                    unlink(prev, nxt, victim)
                    if separate:
                        unlink(eprev, enxt, victim)
                    present[victim] = 0
                    used -= sizes[victim - 1]
                    evictions[r] += 1
            link_mru(prev, nxt, o)
            if separate:
                link_mru(eprev, enxt, o)
            present[o] = 1
            used += size
            if use_ttl:
                stamp[o] = t
    scal[0] = used
    return hit, evictions, expirations


@numba.njit(cache=True, inline="always")
def _heap_less(hf, hs, a, b):  # pragma: no cover - compiled
    return hf[a] < hf[b] or (hf[a] == hf[b] and hs[a] < hs[b])


@numba.njit(cache=True)
def _heap_swap(hf, hs, ho, a, b):  # pragma: no cover - compiled
    hf[a], hf[b] = hf[b], hf[a]
    hs[a], hs[b] = hs[b], hs[a]
    ho[a], ho[b] = ho[b], ho[a]


@numba.njit(cache=True)
def _heap_push(hf, hs, ho, n, f, sq, o):  # pragma: no cover - compiled
    hf[n] = f
    hs[n] = sq
    ho[n] = o
    i = n
    while i > 0:
        p = (i - 1) // 2
        if _heap_less(hf, hs, i, p):
            _heap_swap(hf, hs, ho, i, p)
            i = p
        else:
            break
    return n + 1


@numba.njit(cache=True)
def _heap_pop(hf, hs, ho, n):  # pragma: no cover - compiled
    n -= 1
    _heap_swap(hf, hs, ho, 0, n)
    i = 0
    while True:
        left = 2 * i + 1
        right = left + 1
        m = i
        if left < n and _heap_less(hf, hs, left, m):
            m = left
        if right < n and _heap_less(hf, hs, right, m):
            m = right
        if m == i:
            break
        _heap_swap(hf, hs, ho, i, m)
        i = m
    return n


@numba.njit(cache=True)
def run_lfu(ids, sizes, req_offsets, req_time, capacity, ttl, from_write, present, freq, seq,
            hf, hs, ho, eprev, enxt, stamp, scal):  # pragma: no cover - compiled
    """LFU over one chunk: evict the fewest in-cache hits, ties to the least recently used.

    A lazy binary heap of (frequency, last-use sequence, object) in ``hf``/``hs``/``ho``;
    stale entries are skipped on pop and the heap is compacted when it fills.  Live keys are
    unique, so the eviction order does not depend on the heap's size or layout.  State
    (``simkv.cache.carry.LfuState``) carries over: ``present``/``freq``/``seq`` and the heap
    by dense id, the stamp list ``eprev``/``enxt`` and ``stamp`` by slot (dense id + 1);
    ``scal`` = [heap entries, present objects, bytes used, access counter].
    """
    n_req = req_offsets.shape[0] - 1
    hit = np.zeros(ids.shape[0], dtype=np.uint8)
    evictions = np.zeros(n_req, dtype=np.int64)
    expirations = np.zeros(n_req, dtype=np.int64)
    cap_heap = hf.shape[0]
    hn, n_present, used, counter = scal[0], scal[1], scal[2], scal[3]
    use_ttl = ttl >= 0.0
    for r in range(n_req):
        t = req_time[r]
        if use_ttl:
            while True:
                slot = lru_if_expired(enxt, stamp, t, ttl)
                if slot == 0:
                    break
                unlink(eprev, enxt, slot)
                present[slot - 1] = 0
                n_present -= 1
                used -= sizes[slot - 1]
                expirations[r] += 1
        for j in range(req_offsets[r], req_offsets[r + 1]):
            o = ids[j]
            counter += 1
            if present[o]:
                hit[j] = 1
                freq[o] += 1
                seq[o] = counter
                if use_ttl and not from_write:
                    stamp[o + 1] = t
                    move_mru(eprev, enxt, o + 1)
            else:
                size = sizes[o]
                if capacity >= 0:
                    if size > capacity:
                        continue
                    while used + size > capacity:
                        victim = ho[0]
                        vf = hf[0]
                        vs = hs[0]
                        hn = _heap_pop(hf, hs, ho, hn)
                        if present[victim] and freq[victim] == vf and seq[victim] == vs:
                            present[victim] = 0
                            n_present -= 1
                            used -= sizes[victim]
                            evictions[r] += 1
                            if use_ttl:
                                unlink(eprev, enxt, victim + 1)
                present[o] = 1
                n_present += 1
                freq[o] = 1
                seq[o] = counter
                used += size
                if use_ttl:
                    stamp[o + 1] = t
                    link_mru(eprev, enxt, o + 1)
            if hn + 1 >= cap_heap:
                hn = _heap_compact(hf, hs, ho, hn, present, freq, seq, o)
            if present[o]:
                hn = _heap_push(hf, hs, ho, hn, freq[o], seq[o], o)
    scal[0], scal[1], scal[2], scal[3] = hn, n_present, used, counter
    return hit, evictions, expirations


@numba.njit(cache=True)
def _heap_compact(hf, hs, ho, hn, present, freq, seq, skip):  # pragma: no cover - compiled
    """Keep one live entry per present object (but ``skip``, pushed again by the caller)."""
    k = 0
    for i in range(hn):
        oo = ho[i]
        if present[oo] and freq[oo] == hf[i] and seq[oo] == hs[i] and oo != skip:
            hf[k] = hf[i]
            hs[k] = hs[i]
            ho[k] = oo
            k += 1
    tf = hf[:k].copy()
    ts = hs[:k].copy()
    to = ho[:k].copy()
    hn = 0
    for i in range(k):
        hn = _heap_push(hf, hs, ho, hn, tf[i], ts[i], to[i])
    return hn


@numba.njit(cache=True)
def prefix_runs(hit, req_offsets):  # pragma: no cover - compiled
    """Per request: blocks found anywhere, and the length of the leading run of hits."""
    n_req = req_offsets.shape[0] - 1
    hits = np.zeros(n_req, dtype=np.int64)
    lead = np.zeros(n_req, dtype=np.int64)
    for r in range(n_req):
        a = req_offsets[r]
        b = req_offsets[r + 1]
        run = True
        for j in range(a, b):
            if hit[j]:
                hits[r] += 1
                if run:
                    lead[r] += 1
            else:
                run = False
    return hits, lead
