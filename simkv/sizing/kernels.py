"""Compiled one-pass kernels of the sizing engine (numba, cached on disk).

``grid_pass`` walks a dense access stream once, chunk by chunk, and for every access computes its LRU stack
distance (byte-weighted: the summed size of the distinct objects touched since the object's
previous access, the object included) with a Fenwick tree over groups of access positions (the
tree stays in L1 cache; the last partial group is summed directly), and its reuse
time (now minus the previous touch).  It does not keep the distances: it drops each access
straight into a 2-D histogram over (capacity bucket, TTL bucket), and the leading-run maxima of
each request into a token-weighted one.  A cumulative sum of the histograms then gives the hit
count at every (capacity, TTL) point; see docs/sizing.md for why this is exact.

``belady_hits`` is Belady's MIN (evict the block whose next use is farthest, bypass a block
whose own next use is farther than every cached one) at one capacity in blocks.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _lower_bound_i(a, x):  # pragma: no cover - compiled
    """First index i with a[i] >= x (len(a) if none)."""
    lo = 0
    hi = a.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, inline="always")
def _upper_bound_f(a, x):  # pragma: no cover - compiled
    """First index i with a[i] > x (len(a) if none)."""
    lo = 0
    hi = a.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


#: positions per group in the two-level position index of ``grid_pass`` (2**6 = 64)
GROUP_SHIFT = 6


@numba.njit(cache=True, nogil=True)
def fen_build(pos_weight, fen):  # pragma: no cover - compiled
    """Fill the Fenwick tree ``fen`` (1-based, over groups of positions) from ``pos_weight``."""
    fen[:] = 0
    n_groups = fen.shape[0] - 1
    for q in range(pos_weight.shape[0]):
        fen[(q >> GROUP_SHIFT) + 1] += pos_weight[q]
    for i in range(1, n_groups + 1):
        j = i + (i & (-i))
        if j <= n_groups:
            fen[j] += fen[i]


@numba.njit(cache=True, nogil=True)
def compact_positions(pos_weight, pos_obj, last_pos, k):  # pragma: no cover - compiled
    """Move the live positions (one per object in the stack) to the front, keeping their
    order, so stack distances are unchanged; returns the new next position."""
    w = 0
    for q in range(k):
        o = pos_obj[q]
        if o >= 0:
            pos_weight[w] = pos_weight[q]
            pos_obj[w] = o
            last_pos[o] = w
            w += 1
    for q in range(w, pos_weight.shape[0]):
        pos_weight[q] = 0
        pos_obj[q] = -1
    return w


@numba.njit(cache=True, nogil=True)
def grid_pass(ids, sizes, include, all_included, req_offsets, req_time, tok, caps, ttls,
              last_pos, last_t, pos_weight, pos_obj, fen, scal, block_hist,
              token_hist):  # pragma: no cover - compiled
    """One chunk of the pass: add each access to the (capacity bucket, TTL bucket) histograms.

    ``caps`` ascending int64 capacities in size units, ``ttls`` ascending float64 TTLs in seconds
    (``inf`` = none).  An access to an object with ``include[o] == 0`` (too large for every
    capacity of this pass) never hits and leaves the stack untouched, as in the engine
    (``all_included`` skips that test).  State carried over chunks (``simkv.sizing.carry``):
    ``last_pos``/``last_t`` per object; ``pos_weight``/``pos_obj``: each object's size and id
    at the position of its latest access (-1: vacated), a window compacted when full (kept at
    least twice the objects); a Fenwick tree ``fen`` over groups of 64 positions sums the
    weights (stack distance = ``total`` - weight before the previous position); ``scal`` =
    [total weight, next position].

    ``block_hist[a, b]`` counts accesses whose smallest sufficient capacity index is ``a`` and
    TTL index ``b`` (``len(caps)`` / ``len(ttls)``: a miss everywhere); ``token_hist`` the same
    for the running maxima over a request's leading blocks, weighted by block tokens.
    """
    n_req = req_offsets.shape[0] - 1
    nc = caps.shape[0]
    nt = ttls.shape[0]
    n_pos = pos_weight.shape[0]
    n_groups = fen.shape[0] - 1
    total = scal[0]
    k = scal[1]
    for r in range(n_req):
        t = req_time[r]
        pm_c = 0
        pm_t = 0
        for j in range(req_offsets[r], req_offsets[r + 1]):
            o = ids[j]
            if not all_included and not include[o]:
                ci = nc
                ti = nt
            else:
                s = sizes[o]
                p = last_pos[o]
                if p < 0:
                    ci = nc
                    ti = nt
                else:
                    g = p >> GROUP_SHIFT
                    before = 0
                    for q in range(g << GROUP_SHIFT, p):
                        before += pos_weight[q]
                    i = g
                    while i > 0:
                        before += fen[i]
                        i -= i & (-i)
                    ci = _lower_bound_i(caps, total - before)
                    ti = _upper_bound_f(ttls, t - last_t[o])
                    pos_weight[p] = 0
                    pos_obj[p] = -1
                    i = g + 1
                    while i <= n_groups:
                        fen[i] -= s
                        i += i & (-i)
                    total -= s
                if k == n_pos:
                    k = compact_positions(pos_weight, pos_obj, last_pos, k)
                    fen_build(pos_weight, fen)
                pos_weight[k] = s
                pos_obj[k] = o
                i = (k >> GROUP_SHIFT) + 1
                while i <= n_groups:
                    fen[i] += s
                    i += i & (-i)
                total += s
                last_pos[o] = k
                last_t[o] = t
                k += 1
            block_hist[ci, ti] += 1
            if ci > pm_c:
                pm_c = ci
            if ti > pm_t:
                pm_t = ti
            token_hist[pm_c, pm_t] += tok[j]
    scal[0] = total
    scal[1] = k


@numba.njit(cache=True)
def next_use(ids, n_obj):  # pragma: no cover - compiled
    """For each access, the position of the next access to the same object (n + j if none,
    distinct so that heap ties never arise)."""
    n = ids.shape[0]
    nxt = np.empty(n, dtype=np.int64)
    seen = np.full(n_obj, -1, dtype=np.int64)
    for j in range(n - 1, -1, -1):
        o = ids[j]
        nxt[j] = seen[o] if seen[o] >= 0 else n + j
        seen[o] = j
    return nxt


@numba.njit(cache=True)
def belady_hits(ids, nxt, n_obj, capacity):  # pragma: no cover - compiled
    """Hit flags of Belady's MIN with bypass at ``capacity`` blocks (unit sizes).

    A lazy max-heap of (next use, object); an entry is live iff the object is cached and its
    recorded next use equals the heap key.
    """
    n = ids.shape[0]
    hit = np.zeros(n, dtype=np.uint8)
    if capacity <= 0:
        return hit
    cached = np.zeros(n_obj, dtype=np.uint8)
    key = np.zeros(n_obj, dtype=np.int64)
    hk = np.empty(n + 1, dtype=np.int64)
    ho = np.empty(n + 1, dtype=np.int64)
    hn = 0
    count = 0
    for j in range(n):
        o = ids[j]
        nu = nxt[j]
        if cached[o]:
            hit[j] = 1
        elif count < capacity:
            cached[o] = 1
            count += 1
        else:
            # find the live entry with the farthest next use
            while True:
                top_k = hk[0]
                top_o = ho[0]
                if cached[top_o] and key[top_o] == top_k:
                    break
                hn = _pop(hk, ho, hn)
            if top_k > nu:
                hn = _pop(hk, ho, hn)
                cached[top_o] = 0
                cached[o] = 1
            else:
                continue  # bypass: o's next use is the farthest
        key[o] = nu
        hn = _push(hk, ho, hn, nu, o)
    return hit


@numba.njit(cache=True)
def _push(hk, ho, n, k, o):  # pragma: no cover - compiled
    hk[n] = k
    ho[n] = o
    i = n
    while i > 0:
        p = (i - 1) >> 1
        if hk[p] < hk[i]:
            hk[p], hk[i] = hk[i], hk[p]
            ho[p], ho[i] = ho[i], ho[p]
            i = p
        else:
            break
    return n + 1


@numba.njit(cache=True)
def _pop(hk, ho, n):  # pragma: no cover - compiled
    n -= 1
    hk[0] = hk[n]
    ho[0] = ho[n]
    i = 0
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
    return n
