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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simkv.cache.engine import resolve_trace_models
from simkv.errors import InputError
from simkv.sizing.carry import GridPartState
from simkv.sizing.stream import SizingStream, possible_sizes, sizing_block_stream
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource

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


def part_state(caps: np.ndarray, ttls: np.ndarray, part: GridPart, distinct_sizes: np.ndarray,
               unit: str, rate: float) -> GridPartState:
    """The carried state of one part's pass (its capacities scaled by the sampling rate)."""
    all_included = bool(len(distinct_sizes) == 0 or part.max_size >= distinct_sizes[-1])
    return GridPartState(_scaled_caps(caps[list(part.cap_index)], rate),
                         ttls[list(part.ttl_index)], part.max_size, all_included, unit)


def run_part(stream: SizingStream, caps: np.ndarray, ttls: np.ndarray, part: GridPart) -> PartResult:
    """Hit counts at the part's points (one pass over a whole stream, as one chunk)."""
    st = part_state(caps, ttls, part, stream.distinct_sizes, stream.unit, stream.sample_rate)
    st.feed(stream.ids, stream.sizes, stream.n_objects, stream.req_offsets, stream.req_time_s,
            stream.tokens)
    hits, tok = st.hits()
    return PartResult(part, hits, tok, stream.n_accesses, int(stream.tokens.sum()))


def plan_parts(stream: SizingStream, caps: np.ndarray, n_ttls: int, ttl_chunks: int = 1) -> list[GridPart]:
    """Group the (sorted) capacities by size class; split TTLs into ``ttl_chunks`` pieces."""
    return plan_parts_by_sizes(stream.distinct_sizes, caps, n_ttls, ttl_chunks)


def plan_parts_by_sizes(sizes: np.ndarray, caps: np.ndarray, n_ttls: int,
                        ttl_chunks: int = 1) -> list[GridPart]:
    """:func:`plan_parts` from the ascending size classes alone (known before the stream)."""
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
    return assemble_counts(stream.n_accesses, int(stream.tokens.sum()), stream.unit,
                           stream.sample_rate, capacities, ttls_s, caps, ttls, results)


def assemble_counts(n_acc: int, n_tok: int, unit: str, sample_rate: float, capacities, ttls_s,
                    caps: np.ndarray, ttls: np.ndarray, results: list[PartResult]) -> pd.DataFrame:
    """:func:`assemble` from the stream's totals (accesses, tokens) rather than the stream."""
    hits = np.zeros((len(caps), len(ttls)), dtype=np.int64)
    tok = np.zeros((len(caps), len(ttls)), dtype=np.int64)
    for res in results:
        ci = np.array(res.part.cap_index)[:, None]
        ti = np.array(res.part.ttl_index)[None, :]
        hits[ci, ti] = res.hit_blocks
        tok[ci, ti] = res.hit_tokens
    cap_col = "capacity_blocks" if unit == "blocks" else "capacity_bytes"
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
    frame.attrs["sample_rate"] = sample_rate
    return frame


def lru_grid(trace: Trace | TraceSource, *, capacities_blocks=None, capacities_bytes=None,
             ttls_s=(None,), model: str | None = None, sample_rate: float | None = None,
             sample_salt: int = 0, executor: str = "inline", address: str | None = None,
             ttl_chunks: int = 1, chunk_requests: int | None = None,
             on_chunk: Callable[[int], None] | None = None) -> pd.DataFrame:
    """LRU block and prefix-token hit ratios at every capacity x TTL (``None`` = unlimited / no TTL).

    Exact (equal to ``simkv.cache.simulate`` at each point) unless ``sample_rate`` < 1, which
    gives SHARDS estimates.  ``executor``: ``inline`` (this process) or ``local`` (parts in
    threads, the compiled pass releases the GIL) read the trace as a stream of chunks of
    ``chunk_requests`` requests, every part's state carried over; ``ray`` runs one task per
    part, each reading the trace file itself chunk by chunk (see ``_ray_grid``).
    """
    from simkv.sizing.executor import check_executor

    if (capacities_blocks is None) == (capacities_bytes is None):
        raise InputError("give capacities in blocks or in bytes (exactly one)", where="capacities")
    check_executor(executor)
    unit = "blocks" if capacities_blocks is not None else "bytes"
    capacities = list(capacities_blocks if capacities_blocks is not None else capacities_bytes)
    ttls_s = list(ttls_s)
    if not capacities or not ttls_s:
        raise InputError("the grid needs at least one capacity and one TTL", where="grid")
    caps, ttls = _axes(capacities, ttls_s)
    source = TraceSource.of(trace)
    spec = _StreamSpec(unit, model, sample_rate, sample_salt, chunk_requests)
    if executor == "ray":
        return _ray_grid(source, spec, capacities, ttls_s, caps, ttls, ttl_chunks, address)
    counts = _stream_parts(source, spec, caps, ttls, ttl_chunks, None, executor == "local", on_chunk)
    return assemble_counts(counts.accesses, counts.tokens, unit, counts.sample_rate, capacities,
                           ttls_s, caps, ttls, counts.results)


@dataclass(frozen=True)
class _StreamSpec:
    """How a grid reads its stream: capacity unit, model, SHARDS sampling, chunk size."""

    unit: str
    model: str | None
    sample_rate: float | None
    sample_salt: int
    chunk_requests: int | None


@dataclass(frozen=True)
class _Counts:
    results: list[PartResult]
    accesses: int
    tokens: int
    sample_rate: float


def _stream_parts(source: TraceSource, spec: _StreamSpec, caps: np.ndarray, ttls: np.ndarray,
                  ttl_chunks: int, only: int | None, threads: bool,
                  on_chunk: Callable[[int], None] | None = None) -> _Counts:
    """Read ``source`` chunk by chunk and feed every part's carried state (or only part
    number ``only`` of the plan, for a task that computes one part)."""
    bs = sizing_block_stream(spec.unit, spec.sample_rate, spec.sample_salt)
    states: list[tuple[GridPart, GridPartState]] | None = None
    n_tok = n_req = 0
    with ThreadPoolExecutor(max_workers=2 if threads else 1) as pool:
        # sampling hashes the block hashes themselves; otherwise stored ids may stand in
        for chunk in source.chunks(spec.chunk_requests, columns=(),
                                   ids_as_keys=bs.sample_rate >= 1.0):
            chunk = resolve_trace_models(chunk, spec.model)
            if states is None:
                sizes = possible_sizes(chunk, spec.unit)
                plan = plan_parts_by_sizes(sizes, caps, len(ttls), ttl_chunks)
                plan = plan if only is None else [plan[only]]
                states = [(p, part_state(caps, ttls, p, sizes, spec.unit, bs.sample_rate))
                          for p in plan]
            a = bs.feed(chunk)
            n_tok += int(a.tokens.sum())
            list(pool.map(lambda st, a=a: st.feed(a.ids, a.sizes, a.n_objects, a.req_offsets,
                                                  a.req_time_s, a.tokens),
                          [st for _, st in states]))
            n_req += chunk.n_requests
            if on_chunk is not None:
                on_chunk(n_req)
    results = [PartResult(p, *st.hits(), bs.n_accesses, n_tok) for p, st in states or []]
    return _Counts(results, bs.n_accesses, n_tok, bs.sample_rate)


def grid_part_task(source: TraceSource, spec: _StreamSpec, caps: np.ndarray, ttls: np.ndarray,
                   ttl_chunks: int, only: int) -> _Counts:
    """One Ray task: part ``only`` of the plan, the trace read by the task itself."""
    return _stream_parts(source, spec, caps, ttls, ttl_chunks, only, False)


def _ray_grid(source: TraceSource, spec: _StreamSpec, capacities, ttls_s, caps: np.ndarray,
              ttls: np.ndarray, ttl_chunks: int, address: str | None) -> pd.DataFrame:
    """One Ray task per part of the plan.  A task reads the trace file itself, chunk by chunk
    (the file must be at the same path on every node); only the path travels.  An in-memory
    trace (Python API) goes to the object store once.  The plan comes from the first chunk."""
    from simkv.sizing.executor import map_shared

    if source.path is not None:
        source = TraceSource(path=source.path.resolve(), format=source.format)
    first = next(iter(source.chunks(spec.chunk_requests or 1, columns=(), ids_as_keys=True)), None)
    if first is None:  # an empty stream: nothing to ship
        done = [_stream_parts(source, spec, caps, ttls, ttl_chunks, None, False)]
        return assemble_counts(done[0].accesses, done[0].tokens, spec.unit, done[0].sample_rate,
                               capacities, ttls_s, caps, ttls, done[0].results)
    sizes = possible_sizes(resolve_trace_models(first, spec.model), spec.unit)
    n_parts = len(plan_parts_by_sizes(sizes, caps, len(ttls), ttl_chunks))
    done = map_shared(grid_part_task, [(k,) for k in range(n_parts)],
                      shared=(source, spec, caps, ttls, ttl_chunks), executor="ray",
                      address=address)
    results = [r for c in done for r in c.results]
    return assemble_counts(done[0].accesses, done[0].tokens, spec.unit, done[0].sample_rate,
                           capacities, ttls_s, caps, ttls, results)
