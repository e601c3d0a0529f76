"""One request's step through a storage hierarchy (the loop is ``simkv.sizing.hierarchy``).

1. the request's prefix is served: walking its tokens from 0, each position is served by the
   fastest level holding the chunk that covers it (levels chunk the prompt at their own size;
   a chunk's id is the chained hash where it ends, derived by exact re-chunking), and the
   served prefix ends at the first position no level holds;
2. the request's chunks are written: HBM (level 0) always holds the whole prompt afterwards;
   with ``inclusive`` placement every lower level also gets every chunk (write-through, as
   LMCache stores to each backend), except that chunks served from a slower level are copied
   up only with ``promote_on_hit``; with ``exclusive`` placement a chunk lives in one level,
   new chunks go to HBM, a hit below HBM moves the chunk up (``promote_on_hit``);
3. an entry evicted from a level moves one level down with ``demote_on_evict`` (levels of the
   same chunk size; in inclusive mode only if the level below lacks it), else it is dropped.

Levels below HBM admit ``all`` chunks or only those seen at least twice (``second_access``);
per-model quotas evict that model's least recently used entries first.  Every chunk of a request
present in a level is touched (recency and TTL), like the single-cache engine.

A step reads only its own request's rows of the current chunk (``run.trace``) and the level
states, so walking a trace chunk by chunk gives the same result as walking it whole.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np

from simkv.errors import InputError
from simkv.hashing import template_salt
from simkv.sizing.events.template_change import ALL_COMPONENTS
from simkv.sizing.levelrun import LevelsRun
from simkv.sizing.levels import Hierarchy
from simkv.sizing.levelstate import Entry
from simkv.trace.model import TAG_CODES, Trace
from simkv.trace.rechunk import rechunk

#: one chunk of a request at one level: (key, start token, end token, bytes, mask, storable)
Chunk = tuple[tuple[int, int], int, int, int, int, bool]
#: a served piece of the prefix: (start token, end token, level, chunk index)
Segment = tuple[int, int, int, int]


@dataclass(frozen=True)
class Geometry:
    """What a step reads per level and model for one chunk of the trace: chunk chains and sizes."""

    chunk_bytes: list[list[int]]           # [level][model]: a whole chunk's bytes
    bytes_per_token: list[float]           # [model]
    chains: list[tuple[np.ndarray, list]]  # [level]: (chunk offsets, chained hashes)
    approx: list[bool]                     # [level]: finer than the trace's blocks
    tokens: np.ndarray                     # tokens of each of the trace's blocks


def _level_chains(trace: Trace, chunk_tokens: int) -> tuple[Trace, bool]:
    """The trace chunked at a level's size (exact when coarser; approximate when finer)."""
    if chunk_tokens == trace.block_tokens:
        return trace, False
    if chunk_tokens % trace.block_tokens and trace.block_tokens % chunk_tokens:
        raise InputError(f"a level's chunk of {chunk_tokens} tokens is neither a multiple nor a "
                         f"divisor of the trace's {trace.block_tokens}-token blocks",
                         where="levels.chunk_tokens")
    return rechunk(trace, chunk_tokens), chunk_tokens < trace.block_tokens


def geometry(trace: Trace, hierarchy: Hierarchy, chunk_bytes: list[list[int]],
             bytes_per_token: list[float]) -> Geometry:
    """The chains of every level for ``trace`` (one chunk: re-chunking is per request)."""
    chains, approx = [], []
    for lv in hierarchy.levels:
        t2, a = _level_chains(trace, lv.chunk_tokens)
        chains.append((t2.block_offsets, t2.block_hashes.tolist()))
        approx.append(a)
    return Geometry(chunk_bytes, bytes_per_token, chains, approx, trace.block_token_counts())


def request_step(run: LevelsRun, geo: Geometry, r: int, t: float) -> None:
    """One request: its chunks per level, the served prefix, then writes, touches, moves."""
    trace = run.trace
    n = int(trace.input_tokens[r])
    m = int(trace.model_index[r])
    fa, fb = int(trace.block_offsets[r]), int(trace.block_offsets[r + 1])
    chunks = _chunks(run, geo, r, n, m, fa, fb)
    if run.hierarchy.admission != "all":
        for j in range(len(chunks)):
            cj = run.counts[j]
            for c in chunks[j]:
                cj[c[0]] = cj.get(c[0], 0) + 1
    served, segments = _serve(run, geo, r, n, m, chunks)
    if run.hierarchy.placement == "inclusive":
        _write_inclusive(run, r, t, m, chunks, served, segments)
    else:
        _write_exclusive(run, r, t, m, chunks[0])
    _count_components(run, geo, fa, fb, served)


def _fine_masks(run: LevelsRun, fa: int, fb: int) -> list[int]:
    """Per block of the trace: the prompt components seen up to it (a bit mask)."""
    tags = run.trace.block_tags
    if tags is None:
        return np.full(fb - fa, ALL_COMPONENTS, dtype=np.int64).tolist()
    codes = tags[fa:fb].astype(np.int64)
    mask_f = np.bitwise_or.accumulate(np.left_shift(1, codes)) if fb > fa else codes
    return mask_f.tolist()


def _fine_salts(run: LevelsRun, fa: int, fb: int) -> np.ndarray | None:
    """Per block of the trace: the template-version salt its key carries (None: no change)."""
    tags = run.trace.block_tags
    salt_starts = []
    for comp, v in run.versions.items():
        if v <= 0:
            continue
        if comp is None or tags is None:
            pos = 0
        else:
            hit = np.nonzero(tags[fa:fb] == TAG_CODES[comp])[0]
            if not len(hit):
                continue
            pos = int(hit[0])
        salt_starts.append((pos, template_salt(comp, v)))
    if not salt_starts:
        return None
    salt_f = np.zeros(fb - fa, dtype=np.uint64)
    for pos, sv in salt_starts:
        salt_f[pos:] ^= np.uint64(sv)
    return salt_f


def _chunks(run: LevelsRun, geo: Geometry, r: int, n: int, m: int, fa: int,
            fb: int) -> list[list[Chunk]]:
    """Request ``r``'s chunks at every level (keys salted by template versions)."""
    bt = run.trace.block_tokens
    mask_list = _fine_masks(run, fa, fb)
    salt_f = _fine_salts(run, fa, fb)
    chunks = []
    for j, lv in enumerate(run.levels):
        off, hashes = geo.chains[j]
        a, b = int(off[r]), int(off[r + 1])
        B = lv.chunk_tokens
        size = geo.chunk_bytes[j][m]
        ends = [min((k + 1) * B, n) for k in range(b - a)]
        fine = [(e - 1) // bt for e in ends]
        if salt_f is not None:
            salts = salt_f[fine].tolist()
            keys = [(m, h ^ sl) for h, sl in zip(hashes[a:b], salts, strict=True)]
        else:
            keys = [(m, h) for h in hashes[a:b]]
        chunks.append([(key, k * B, e, size, mask_list[f], lv.store_partial or e - k * B == B)
                       for k, (key, e, f) in enumerate(zip(keys, ends, fine, strict=True))])
    return chunks


def _serve(run: LevelsRun, geo: Geometry, r: int, n: int, m: int,
           chunks: list[list[Chunk]]) -> tuple[int, list[Segment]]:
    """The served prefix: each position from the fastest level holding its chunk."""
    levels, state, rec = run.levels, run.state, run.rec
    present = [[c[5] and c[0] in state[j] and not state[j].is_stale(c[0]) for c in chunks[j]]
               for j in range(len(levels))]
    x = 0
    segments: list[Segment] = []
    while x < n:
        for j in range(len(levels)):
            k = x // levels[j].chunk_tokens
            if k < len(chunks[j]) and present[j][k]:
                end = chunks[j][k][2]
                segments.append((x, end, j, k))
                x = end
                break
        else:
            break
    loaded: list[set[int]] = [set() for _ in levels]
    for s0, s1, j, k in segments:
        rec[f"served_tokens_{run.names[j]}"][r] += s1 - s0
        rec[f"read_bytes_{run.names[j]}"][r] += int(round(geo.bytes_per_token[m] * (s1 - s0)))
        loaded[j].add(k)
    for j, lv in enumerate(levels):
        rec[f"loads_{lv.name}"][r] = len(loaded[j])
        if j > 0 and loaded[j]:
            run.load_s[r] += lv.latency_s * len(loaded[j]) + \
                rec[f"read_bytes_{lv.name}"][r] / lv.read_bytes_per_s
    rec["hit_tokens"][r] = x
    rec["missed_tokens"][r] = n - x
    return x, segments


def _from_slower(segments: list[Segment], starts: list[int], j: int, s0: int, s1: int) -> bool:
    """Were all of [s0, s1) (inside the served prefix) served from levels slower than j?"""
    lo = bisect_right(starts, s0) - 1
    hi = bisect_left(starts, s1)
    return min(sg[2] for sg in segments[lo:hi]) > j


def _write_inclusive(run: LevelsRun, r: int, t: float, m: int, chunks: list[list[Chunk]],
                     served: int, segments: list[Segment]) -> None:
    """Write-through: every level touches what it holds and writes what it admits."""
    h = run.hierarchy
    starts = [sg[0] for sg in segments]
    for j in range(len(run.levels)):
        s = run.state[j]
        for key, s0, s1, size, mask, storable in chunks[j]:
            if key in s:  # current state: earlier chunks may have evicted it
                s.touch(key, t)
                continue
            if not storable:
                continue
            promo = s1 <= served and _from_slower(segments, starts, j, s0, s1)
            if j > 0 and (not run.admitted(j, key) or (promo and not h.promote_on_hit)):
                continue
            run.place(j, key, Entry(size, m, mask, t), r, "promote" if promo else "write")


def _write_exclusive(run: LevelsRun, r: int, t: float, m: int, chunks: list[Chunk]) -> None:
    """One level per chunk (equal chunk sizes): new chunks go to HBM, hits may move up."""
    state = run.state
    for key, _s0, _s1, size, mask, storable in chunks:
        where = next((j for j in range(len(state)) if key in state[j]), None)
        if where == 0:
            state[0].touch(key, t)
        elif where is not None and run.hierarchy.promote_on_hit:
            e = state[where].drop(key)
            e.t = t
            run.place(0, key, e, r, "promote")
        elif where is not None:
            state[where].touch(key, t)
        elif storable:
            run.place(0, key, Entry(size, m, mask, t), r, "write")


def _count_components(run: LevelsRun, geo: Geometry, fa: int, fb: int, served: int) -> None:
    """Input and hit tokens by prompt component (block tags)."""
    tok = geo.tokens[fa:fb]
    ends = np.cumsum(tok)
    starts = ends - tok
    hit_tok = np.clip(np.minimum(ends, served) - starts, 0, None)
    tags = run.trace.block_tags
    codes = tags[fa:fb].astype(np.int64) if tags is not None else np.zeros(fb - fa, dtype=np.int64)
    np.add.at(run.comp_in, codes, tok)
    np.add.at(run.comp_hit, codes, hit_tok)
