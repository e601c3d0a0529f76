"""Exact LRU hit ratios at every (capacity, TTL) point of a grid, from one pass per size class.

For LRU with a TTL refreshed on every hit and expired entries dropped eagerly (the engine's
semantics, ``simkv.cache.kernels``), an access hits at capacity ``C`` and TTL ``T`` iff

- its byte-weighted stack distance (the summed sizes of the distinct objects touched since its
  previous access, itself included) is at most ``C``, and
- its reuse time (now minus its previous touch) is below ``T``.

Objects larger than ``C`` are never admitted and leave the cache untouched, so a capacity's
stack is the stream restricted to objects that fit it: one pass per distinct "largest size that
fits" (one pass in total when capacity counts blocks or all blocks weigh the same).  A request's
prefix hit is its leading run of hits, which at ``(C, T)`` is the set of leading blocks whose
running maxima of stack distance and reuse time pass both tests.  docs/sizing.md has the proof.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simkv.errors import InputError
from simkv.sizing.kernels import grid_pass
from simkv.sizing.stream import SizingStream, prepare_stream
from simkv.trace.model import Trace

#: capacity value standing for "unlimited" inside the kernels
UNLIMITED = np.iinfo(np.int64).max


@dataclass(frozen=True)
class GridPart:
    """An independent piece of a grid: capacities sharing one size class, a subset of TTLs.

    ``max_size``: objects larger than this are excluded from the pass (they fit none of the
    part's capacities).  ``cap_index`` / ``ttl_index`` point into the grid's sorted axes.
    """

    max_size: int
    cap_index: tuple[int, ...]
    ttl_index: tuple[int, ...]


@dataclass(frozen=True)
class PartResult:
    part: GridPart
    hit_blocks: np.ndarray    # [len(cap_index), len(ttl_index)]
    hit_tokens: np.ndarray
    accesses: int
    tokens: int


def _scaled_caps(caps: np.ndarray, rate: float) -> np.ndarray:
    if rate >= 1.0:
        return caps
    out = np.floor(caps.astype(np.float64) * rate)
    return np.where(caps == UNLIMITED, UNLIMITED, out.astype(np.int64))


def run_part(stream: SizingStream, caps: np.ndarray, ttls: np.ndarray, part: GridPart) -> PartResult:
    """Hit counts at the part's points (one pass over the stream)."""
    all_included = bool(len(stream.distinct_sizes) == 0 or part.max_size >= stream.distinct_sizes[-1])
    if all_included:
        include = np.ones(1, dtype=np.uint8)
        n_included = stream.n_accesses
    else:
        include = (stream.sizes <= part.max_size).astype(np.uint8)
        n_included = int(np.count_nonzero(include[stream.ids]))
    weight_dtype = np.int32 if stream.unit == "blocks" and n_included < 2**31 else np.int64
    sub_caps = _scaled_caps(caps[list(part.cap_index)], stream.sample_rate)
    sub_ttls = ttls[list(part.ttl_index)]
    bh, th, n_acc, n_tok = grid_pass(stream.ids, stream.sizes, include, all_included,
                                     stream.n_objects, stream.req_offsets, stream.req_time_s,
                                     stream.tokens, sub_caps, sub_ttls,
                                     np.zeros(n_included, dtype=weight_dtype))
    hits = bh.cumsum(axis=0).cumsum(axis=1)[:-1, :-1]
    tok = th.cumsum(axis=0).cumsum(axis=1)[:-1, :-1]
    return PartResult(part, hits, tok, int(n_acc), int(n_tok))


def plan_parts(stream: SizingStream, caps: np.ndarray, n_ttls: int, ttl_chunks: int = 1) -> list[GridPart]:
    """Group the (sorted) capacities by size class; split TTLs into ``ttl_chunks`` pieces."""
    sizes = stream.distinct_sizes
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(caps):
        k = int(np.searchsorted(sizes, c, side="right")) - 1
        if k < 0:
            continue  # nothing fits: no hits at this capacity
        groups.setdefault(int(sizes[k]), []).append(i)
    chunks = [tuple(int(x) for x in c) for c in np.array_split(np.arange(n_ttls), max(1, min(ttl_chunks, n_ttls)))]
    return [GridPart(max_size=s, cap_index=tuple(idx), ttl_index=ch)
            for s, idx in sorted(groups.items()) for ch in chunks if ch]


def _axes(capacities, ttls_s) -> tuple[np.ndarray, np.ndarray]:
    caps = np.array(sorted({UNLIMITED if c is None else int(c) for c in capacities}), dtype=np.int64)
    if np.any(caps < 0):
        raise InputError("capacities must be >= 0", where="capacities")
    tt = np.array(sorted({np.inf if t is None else float(t) for t in ttls_s}), dtype=np.float64)
    if np.any(tt <= 0):
        raise InputError("TTLs must be > 0", where="ttls")
    return caps, tt


def assemble(stream: SizingStream, capacities, ttls_s, caps: np.ndarray, ttls: np.ndarray,
             results: list[PartResult]) -> pd.DataFrame:
    """One row per requested (capacity, TTL), in the order given (capacity-major)."""
    hits = np.zeros((len(caps), len(ttls)), dtype=np.int64)
    tok = np.zeros((len(caps), len(ttls)), dtype=np.int64)
    for res in results:
        ci = np.array(res.part.cap_index)[:, None]
        ti = np.array(res.part.ttl_index)[None, :]
        hits[ci, ti] = res.hit_blocks
        tok[ci, ti] = res.hit_tokens
    n_acc = stream.n_accesses
    n_tok = int(stream.tokens.sum())
    cap_col = "capacity_blocks" if stream.unit == "blocks" else "capacity_bytes"
    cap_vals = np.array([UNLIMITED if c is None else int(c) for c in capacities], dtype=np.int64)
    ttl_vals = np.array([np.inf if t is None else float(t) for t in ttls_s], dtype=np.float64)
    a = np.repeat(np.searchsorted(caps, cap_vals), len(ttl_vals))
    b = np.tile(np.searchsorted(ttls, ttl_vals), len(cap_vals))
    h, k = hits[a, b], tok[a, b]
    frame = pd.DataFrame({
        cap_col: pd.array(np.repeat(cap_vals, len(ttl_vals)), dtype="Int64"),
        "ttl_s": pd.array(np.tile(ttl_vals, len(cap_vals)), dtype="Float64"),
        "block_hit_ratio": h / n_acc if n_acc else np.zeros(len(h)),
        "prefix_token_hit_ratio": k / n_tok if n_tok else np.zeros(len(k)),
        "hit_blocks": h,
        "prefix_hit_tokens": k,
        "block_accesses": np.full(len(h), n_acc, dtype=np.int64),
        "input_tokens": np.full(len(h), n_tok, dtype=np.int64),
    })
    frame.loc[frame[cap_col] == UNLIMITED, cap_col] = pd.NA
    frame.loc[np.isinf(frame["ttl_s"].to_numpy(dtype=np.float64, na_value=np.inf)), "ttl_s"] = pd.NA
    frame.attrs["sample_rate"] = stream.sample_rate
    return frame


def lru_grid(trace: Trace, *, capacities_blocks=None, capacities_bytes=None, ttls_s=(None,),
             model: str | None = None, sample_rate: float | None = None, sample_salt: int = 0,
             executor: str = "inline", address: str | None = None, ttl_chunks: int = 1) -> pd.DataFrame:
    """LRU block and prefix-token hit ratios at every capacity x TTL (``None`` = unlimited / no TTL).

    Exact (equal to ``simkv.cache.simulate`` at each point) unless ``sample_rate`` < 1, which
    gives SHARDS estimates.  ``executor``: ``inline`` (this process), ``local`` (a process
    pool over the grid's parts) or ``ray``.
    """
    from simkv.sizing.executor import map_shared

    if (capacities_blocks is None) == (capacities_bytes is None):
        raise InputError("give capacities in blocks or in bytes (exactly one)", where="capacities")
    unit = "blocks" if capacities_blocks is not None else "bytes"
    capacities = list(capacities_blocks if capacities_blocks is not None else capacities_bytes)
    ttls_s = list(ttls_s)
    if not capacities or not ttls_s:
        raise InputError("the grid needs at least one capacity and one TTL", where="grid")
    caps, ttls = _axes(capacities, ttls_s)
    stream = prepare_stream(trace, unit=unit, model=model, sample_rate=sample_rate,
                            sample_salt=sample_salt)
    parts = plan_parts(stream, caps, len(ttls), ttl_chunks)
    results = map_shared(run_part, [(p,) for p in parts], shared=(stream, caps, ttls),
                         executor=executor, address=address)
    return assemble(stream, capacities, ttls_s, caps, ttls, results)
