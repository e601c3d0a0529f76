"""Compiled storage-level walk (numba, cached on disk): the fast twin of ``levelstep``.

``simkv.sizing.levelstep`` (one request at a time, per-level Python dicts) is the slow,
obviously-correct reference; this module does the same per-request work over flat arrays so a
whole chunk of the trace is one call.  Layout:

- every chunk key ``(family, model, chained hash ^ template salt)`` gets a dense id the first
  time it is seen (one numba dict; a *family* is a chunk size, so levels of equal chunk size
  share ids and an entry keeps its id as it is demoted or promoted); a key's slot is id + 1
  (slot 0 is the sentinel of the state machine's lists);
- each level ``j`` is row ``j`` of 2-D arrays indexed by slot: the recency list
  (``prev``/``nxt``, the functions of ``simkv.cache.statemachine``: this module defines no list
  operation), stamp, model, prompt-component mask and flags (member, stale); an entry's bytes
  are ``chunk_bytes[j, model]`` (a chunk occupies a whole chunk's bytes), so they need no array;
- per level: used, entries and stale bytes (``SC``), bytes by model and which models were ever
  stored (``BYG``/``SEEN``), admission counts (capped at 2: only ``>= 2`` is ever asked).

``simkv.sizing.levelwalk.walk`` runs requests ``r0..`` of a chunk over these helpers and
returns early where Python has work to do
(a lifecycle event is due, a storage-view sample is due, or the id arrays must grow), so
events, samples and growth stay in Python (``simkv.sizing.levelfast``) and the result does not
depend on where a call stops.  The order of every state change is the reference's: an
eviction's victims are processed first-in first-out, which gives each level the same sequence
of inserts as the reference's depth-first recursion (a level's victims only ever go to the
level below, and levels do not read each other's state).
"""

from __future__ import annotations

import numba
import numpy as np

from simkv.cache.statemachine import first_in_group, link_mru, move_mru, unlink

MEMBER = np.uint8(1)
STALE = np.uint8(2)
#: ``SC`` columns per level
USED, ENTRIES, STALE_B = 0, 1, 2
#: ``CNT``: run-wide counters
EVICTIONS, EXPIRATIONS = 0, 1
#: record rows: the hierarchy's columns, then ``LEVEL_BASE + 4 * j + (served, read, written,
#: loads)`` (the order of ``simkv.sizing.levelrun.REQUEST_COLUMNS`` / ``LEVEL_COLUMNS``)
HIT, MISS, PROMO, DEMO, EVICT = 0, 1, 2, 3, 4
LEVEL_BASE = 5
#: placement kinds
WRITE, PROMOTE, DEMOTE = 0, 1, 2
#: why ``walk`` returned
DONE, EVENT, SAMPLE, GROW = 0, 1, 2, 3


@numba.njit(cache=True, inline="always")
def drop_slot(S, CSZ, j, o):  # pragma: no cover - compiled
    """Take slot ``o`` out of level ``j`` (its arrays keep the values until it is re-inserted)."""
    PREV, NXT, STAMP, GROUP, MASK, FLAGS, COUNTS, SC, BYG, SEEN, CNT = S
    unlink(PREV[j], NXT[j], o)
    f = FLAGS[j, o]
    FLAGS[j, o] = 0
    g = GROUP[j, o]
    size = CSZ[j, g]
    SC[j, USED] -= size
    SC[j, ENTRIES] -= 1
    BYG[j, g] -= size
    if f & STALE:
        SC[j, STALE_B] -= size


@numba.njit(cache=True)
def drop_slots(S, CSZ, j, slots):  # pragma: no cover - compiled
    for o in slots:
        drop_slot(S, CSZ, j, o)


@numba.njit(cache=True, inline="always")
def _insert(S, CSZ, j, o, g, mask, t, stale):  # pragma: no cover - compiled
    PREV, NXT, STAMP, GROUP, MASK, FLAGS, COUNTS, SC, BYG, SEEN, CNT = S
    link_mru(PREV[j], NXT[j], o)
    # a stale entry moved here stays stale but, as in the reference, adds no stale bytes
    FLAGS[j, o] = MEMBER | STALE if stale else MEMBER
    GROUP[j, o] = g
    MASK[j, o] = mask
    STAMP[j, o] = t
    size = CSZ[j, g]
    SC[j, USED] += size
    SC[j, ENTRIES] += 1
    BYG[j, g] += size
    SEEN[j, g] = 1


@numba.njit(cache=True, inline="always")
def evict_to(S, CSZ, j, g, limit, extra, victims):  # pragma: no cover - compiled
    """Evict from level ``j`` until ``extra`` more bytes fit under ``limit`` (model ``g``'s
    bytes when ``g >= 0``, else the level's); victims appended as (level, slot, model, mask,
    stamp, stale)."""
    PREV, NXT, STAMP, GROUP, MASK, FLAGS, COUNTS, SC, BYG, SEEN, CNT = S
    while True:
        if g >= 0:
            if BYG[j, g] + extra <= limit:
                return
            o = first_in_group(NXT[j], GROUP[j], g)
        else:
            if SC[j, USED] + extra <= limit:
                return
            o = NXT[j, 0]
        victims.append((j, o, np.int64(GROUP[j, o]), np.int64(MASK[j, o]), STAMP[j, o],
                        np.int64(FLAGS[j, o] & STALE)))
        drop_slot(S, CSZ, j, o)


@numba.njit(cache=True, inline="always")
def _place(S, P, R, j, o, g, mask, t, stale, r, kind, victims):  # pragma: no cover - compiled
    """``LevelsRun.place`` without the demotions (the caller drains ``victims``)."""
    CAP, QUOTA, CSZ, CT, SP, TTL, LAT, RBPS, BPT, OPT = P
    size = CSZ[j, g]
    cap = CAP[j]
    q = QUOTA[j, g]
    if (cap >= 0 and size > cap) or (q >= 0 and size > q):
        return False
    if q >= 0:
        evict_to(S, CSZ, j, g, q, size, victims)
    if cap >= 0:
        evict_to(S, CSZ, j, -1, cap, size, victims)
    _insert(S, CSZ, j, o, g, mask, t, stale)
    R[LEVEL_BASE + 4 * j + 2, r] += size
    if kind == PROMOTE:
        R[PROMO, r] += size
    elif kind == DEMOTE:
        R[DEMO, r] += size
    return True


@numba.njit(cache=True, inline="always")
def _admitted(S, P, j, o):  # pragma: no cover - compiled
    return j == 0 or P[9][3] != 0 or S[6][j, o] >= 2


@numba.njit(cache=True, inline="always")
def _place_and_demote(S, P, R, j, o, g, mask, t, stale, r, kind,
                      victims):  # pragma: no cover - compiled
    """``LevelsRun.place`` with ``evicted``: victims move one level down or are dropped
    (``victims``: an empty work list, reused from call to call)."""
    CAP, QUOTA, CSZ, CT, SP, TTL, LAT, RBPS, BPT, OPT = P
    FLAGS, CNT = S[5], S[10]
    n_levels = CAP.shape[0]
    _place(S, P, R, j, o, g, mask, t, stale, r, kind, victims)
    qi = 0
    while qi < len(victims):
        vj, vo, vg, vmask, vt, vstale = victims[qi]
        qi += 1
        CNT[EVICTIONS] += 1
        down = vj + 1
        if (OPT[2] != 0 and vstale == 0 and down < n_levels and CT[down] == CT[vj]
                and not (FLAGS[down, vo] & MEMBER) and _admitted(S, P, down, vo)):
            if _place(S, P, R, down, vo, vg, vmask, vt, 0, r, DEMOTE, victims):
                continue
        R[EVICT, r] += CSZ[vj, vg]
    victims.clear()


@numba.njit(cache=True)
def _victim_list():  # pragma: no cover - compiled
    """An empty list of victims: (level, slot, model, mask, stamp, stale)."""
    victims = [(np.int64(0), np.int64(0), np.int64(0), np.int64(0), 0.0, np.int64(0))]
    victims.pop()
    return victims


@numba.njit(cache=True, inline="always")
def _touch(S, j, o, t):  # pragma: no cover - compiled
    move_mru(S[0][j], S[1][j], o)
    S[2][j, o] = t


@numba.njit(cache=True)
def expire_level(S, CSZ, j, t, ttl):  # pragma: no cover - compiled
    """Drop level ``j``'s entries whose stamp is ``ttl`` or more before ``t``; how many."""
    NXT, STAMP = S[1], S[2]
    n = 0
    o = NXT[j, 0]
    while o != 0:
        nx = NXT[j, o]
        if t - STAMP[j, o] >= ttl:
            drop_slot(S, CSZ, j, o)
            n += 1
        o = nx
    return n


@numba.njit(cache=True, inline="always")
def _from_slower(seg_s, seg_l, nseg, j, s0, s1):  # pragma: no cover - compiled
    """Were all of [s0, s1) (inside the served prefix) served from levels slower than ``j``?"""
    starts = seg_s[:nseg]
    lo = np.searchsorted(starts, s0, side="right") - 1
    hi = np.searchsorted(starts, s1, side="left")
    best = seg_l[lo]
    for i in range(lo + 1, hi):
        best = min(best, seg_l[i])
    return best > j


@numba.njit(cache=True)
def shrink_level(S, CSZ, j, g, limit):  # pragma: no cover - compiled
    """Evict level ``j``'s least recently used entries (of model ``g`` when ``>= 0``) until it
    fits ``limit``; the victims' bytes, in eviction order."""
    victims = _victim_list()
    evict_to(S, CSZ, j, g, limit, 0, victims)
    out = np.zeros(len(victims), dtype=np.int64)
    for i in range(len(victims)):
        out[i] = CSZ[j, victims[i][2]]
    return out
