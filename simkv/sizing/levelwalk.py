"""The compiled per-request walk over storage levels (numba): ``levelstep`` over flat arrays.

One call walks requests ``r0..`` of a chunk of the trace, in the reference's order per request
(events due, TTL expiry, the storage-view sample, then the step: chunks per level, the served
prefix, writes/touches/moves, components), and returns where Python has work to do: an event
or a sample due, or the id arrays to grow (``simkv.sizing.levelfast.walk_chunk``).  The state
and its operations (insert, evict, demote, touch) are ``simkv.sizing.levelkernel``.
"""

from __future__ import annotations

import numba
import numpy as np

from simkv.sizing.levelkernel import (
    DONE,
    EVENT,
    EXPIRATIONS,
    GROW,
    HIT,
    LEVEL_BASE,
    MEMBER,
    MISS,
    PROMOTE,
    SAMPLE,
    STALE,
    WRITE,
    _admitted,
    _from_slower,
    _place_and_demote,
    _touch,
    _victim_list,
    drop_slot,
    expire_level,
)


@numba.njit(cache=True)
def _scratch(n_levels, max_ch, max_f):  # pragma: no cover - compiled
    """Per-request work arrays: each level's chunks (slot, end, mask, storable, present),
    the served segments, loads per level, per-block masks and salts."""
    return (np.zeros((n_levels, max_ch), dtype=np.int64), np.zeros((n_levels, max_ch), np.int64),
            np.zeros((n_levels, max_ch), np.int64), np.zeros((n_levels, max_ch), np.bool_),
            np.zeros((n_levels, max_ch), np.bool_), np.zeros(n_levels, np.int64),
            np.zeros(n_levels, np.int64), np.zeros(max_f, np.int64), np.zeros(max_f, np.int64),
            np.zeros(n_levels * max_ch + 1, np.int64), np.zeros(n_levels * max_ch + 1, np.int64),
            np.zeros(n_levels * max_ch + 1, np.int64))


@numba.njit(cache=True)
def _masks_salts(W, fa, nf, tags, has_tags, all_mask, salt_codes, salt_vals):  # pragma: no cover
    """Per block of the request: the prompt components seen up to it and the template salt."""
    MF, SF = W[7], W[8]
    acc = 0
    for i in range(nf):
        if has_tags:
            acc |= np.int64(1) << np.int64(tags[fa + i])
            MF[i] = acc
        else:
            MF[i] = all_mask
        SF[i] = 0
    for v in range(salt_codes.shape[0]):
        pos = 0
        if salt_codes[v] >= 0 and has_tags:
            pos = -1
            for i in range(nf):
                if tags[fa + i] == salt_codes[v]:
                    pos = i
                    break
            if pos < 0:
                continue
        for i in range(pos, nf):
            SF[i] ^= salt_vals[v]


@numba.njit(cache=True)
def _request_chunks(S, P, W, D, IDS, fam, first_of, r, n, m, bt, hoff, hashes,
                    hbase):  # pragma: no cover - compiled
    """The request's chunks at every level (``levelstep._chunks``), admission counts, and
    which are present (stored, held and not stale)."""
    CT, SP, adm_all = P[3], P[4], P[9][3] != 0
    FLAGS, COUNTS = S[5], S[6]
    KID, KEND, KMASK, KSTOR, PRES, NCH, MF, SF = W[0], W[1], W[2], W[3], W[4], W[5], W[7], W[8]
    for j in range(CT.shape[0]):
        a = hoff[j, r]
        nc = hoff[j, r + 1] - a
        NCH[j] = nc
        B = CT[j]
        f0 = first_of[j]
        for k in range(nc):
            e = min((k + 1) * B, n)
            f = (e - 1) // bt
            KEND[j, k] = e
            KMASK[j, k] = MF[f]
            KSTOR[j, k] = SP[j] != 0 or e - k * B == B
            if f0 == j:
                key = (fam[j], m, hashes[hbase[j] + a + k] ^ SF[f])
                i = D.get(key, -1)
                if i < 0:
                    i = IDS[0]
                    D[key] = i
                    IDS[0] += 1
                KID[j, k] = i + 1
            else:
                KID[j, k] = KID[f0, k]
            o = KID[j, k]
            if not adm_all and j > 0 and COUNTS[j, o] < 2:
                COUNTS[j, o] += 1
            PRES[j, k] = KSTOR[j, k] and FLAGS[j, o] == MEMBER


@numba.njit(cache=True)
def _serve(P, W, R, load_s, r, n, m):  # pragma: no cover - compiled
    """The served prefix (``levelstep._serve``); returns (served tokens, segments)."""
    CT, LAT, RBPS, BPT = P[3], P[6], P[7], P[8]
    KEND, PRES, NCH, LOADS, seg_s, seg_e, seg_l = W[1], W[4], W[5], W[6], W[9], W[10], W[11]
    n_levels = CT.shape[0]
    x = 0
    nseg = 0
    while x < n:
        found = False
        for j in range(n_levels):
            k = x // CT[j]
            if k < NCH[j] and PRES[j, k]:
                seg_s[nseg] = x
                seg_e[nseg] = KEND[j, k]
                seg_l[nseg] = j
                nseg += 1
                x = KEND[j, k]
                found = True
                break
        if not found:
            break
    LOADS[:] = 0
    for i in range(nseg):
        j = seg_l[i]
        ln = seg_e[i] - seg_s[i]
        R[LEVEL_BASE + 4 * j, r] += ln
        R[LEVEL_BASE + 4 * j + 1, r] += np.int64(np.rint(BPT[m] * ln))
        LOADS[j] += 1
    for j in range(n_levels):
        R[LEVEL_BASE + 4 * j + 3, r] = LOADS[j]
        if j > 0 and LOADS[j]:
            load_s[r] += LAT[j] * LOADS[j] + R[LEVEL_BASE + 4 * j + 1, r] / RBPS[j]
    R[HIT, r] = x
    R[MISS, r] = n - x
    return x, nseg


@numba.njit(cache=True)
def _write_inclusive(S, P, W, R, r, t, m, served, nseg, victims):  # pragma: no cover - compiled
    """Write-through: every level touches what it holds and writes what it admits."""
    CT, promote = P[3], P[9][1] != 0
    FLAGS = S[5]
    KID, KEND, KMASK, KSTOR, NCH, seg_s, seg_l = W[0], W[1], W[2], W[3], W[5], W[9], W[11]
    for j in range(CT.shape[0]):
        for k in range(NCH[j]):
            o = KID[j, k]
            if FLAGS[j, o] & MEMBER:
                _touch(S, j, o, t)
                continue
            if not KSTOR[j, k]:
                continue
            s1 = KEND[j, k]
            promo = s1 <= served and _from_slower(seg_s, seg_l, nseg, j, k * CT[j], s1)
            if j > 0 and (not _admitted(S, P, j, o) or (promo and not promote)):
                continue
            _place_and_demote(S, P, R, j, o, m, KMASK[j, k], t, 0, r,
                              PROMOTE if promo else WRITE, victims)


@numba.njit(cache=True)
def _write_exclusive(S, P, W, R, r, t, m, victims):  # pragma: no cover - compiled
    """One level per chunk: new chunks go to HBM, hits may move up (``promote_on_hit``)."""
    CSZ, promote = P[2], P[9][1] != 0
    GROUP, MASK, FLAGS = S[3], S[4], S[5]
    KID, KMASK, KSTOR, NCH = W[0], W[2], W[3], W[5]
    n_levels = CSZ.shape[0]
    for k in range(NCH[0]):
        o = KID[0, k]
        where = -1
        for j in range(n_levels):
            if FLAGS[j, o] & MEMBER:
                where = j
                break
        if where == 0:
            _touch(S, 0, o, t)
        elif where > 0 and promote:
            g = np.int64(GROUP[where, o])
            mk = np.int64(MASK[where, o])
            st = np.int64(FLAGS[where, o] & STALE)
            drop_slot(S, CSZ, where, o)
            _place_and_demote(S, P, R, 0, o, g, mk, t, st, r, PROMOTE, victims)
        elif where > 0:
            _touch(S, where, o, t)
        elif KSTOR[0, k]:
            _place_and_demote(S, P, R, 0, o, m, KMASK[0, k], t, 0, r, WRITE, victims)


@numba.njit(cache=True)
def _components(fa, nf, served, tags, has_tags, tokcnt, comp_in,
                comp_hit):  # pragma: no cover - compiled
    """Input and hit tokens by prompt component (block tags)."""
    end = 0
    for i in range(nf):
        tok = tokcnt[fa + i]
        start = end
        end += tok
        hit = min(end, served) - start
        if hit < 0:
            hit = 0
        c = np.int64(tags[fa + i]) if has_tags else np.int64(0)
        comp_in[c] += tok
        comp_hit[c] += hit


@numba.njit(cache=True)
def _due(S, P, r, r0, phase, t, next_event_t, next_sample_t, ids_needed,
         cap_ids):  # pragma: no cover - compiled
    """Why the walk must stop before request ``r``'s step (DONE: it need not); expires
    entries past their TTL on the way, as the reference does after the events due."""
    CSZ, TTL, CNT = P[2], P[5], S[10]
    if not (r == r0 and phase == 1):
        if next_event_t <= t:
            return EVENT
        for j in range(TTL.shape[0]):
            if TTL[j] >= 0:
                CNT[EXPIRATIONS] += expire_level(S, CSZ, j, t, TTL[j])
        if t >= next_sample_t:
            return SAMPLE
    if ids_needed > cap_ids:
        return GROW
    return DONE


@numba.njit(cache=True)
def walk(S, P, D, IDS, fam, first_of, salt_codes, salt_vals, all_mask,
         arrival, inp, midx, boff, tags, has_tags, tokcnt, bt, hoff, hashes, hbase,
         R, load_s, comp_in, comp_hit, r0, phase, next_event_t, next_sample_t,
         cap_ids):  # pragma: no cover - compiled
    """Requests ``r0..`` of one chunk (see the module docstring); returns (request, why).

    ``phase`` 1: request ``r0``'s events, expiry and sample are done already (resume after a
    SAMPLE or GROW stop).  ``hoff[j]`` / ``hashes[hbase[j]:]``: level ``j``'s chunk chain."""
    n_levels = P[0].shape[0]
    n_req = arrival.shape[0]
    max_ch = 1
    max_f = 1
    for r in range(r0, n_req):
        max_f = max(max_f, boff[r + 1] - boff[r])
        for j in range(n_levels):
            max_ch = max(max_ch, hoff[j, r + 1] - hoff[j, r])
    W = _scratch(n_levels, max_ch, max_f)
    victims = _victim_list()
    for r in range(r0, n_req):
        t = arrival[r]
        new_ids = 0
        for j in range(n_levels):
            new_ids += hoff[j, r + 1] - hoff[j, r]
        why = _due(S, P, r, r0, phase, t, next_event_t, next_sample_t, IDS[0] + new_ids,
                   cap_ids)
        if why != DONE:
            return r, why
        n = inp[r]
        m = np.int64(midx[r])
        fa = boff[r]
        nf = boff[r + 1] - fa
        _masks_salts(W, fa, nf, tags, has_tags, all_mask, salt_codes, salt_vals)
        _request_chunks(S, P, W, D, IDS, fam, first_of, r, n, m, bt, hoff, hashes, hbase)
        served, nseg = _serve(P, W, R, load_s, r, n, m)
        if P[9][0] != 0:
            _write_exclusive(S, P, W, R, r, t, m, victims)
        else:
            _write_inclusive(S, P, W, R, r, t, m, served, nseg, victims)
        _components(fa, nf, served, tags, has_tags, tokcnt, comp_in, comp_hit)
    return n_req, DONE
