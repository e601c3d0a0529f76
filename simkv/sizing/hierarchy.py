"""Simulation of a storage hierarchy with lifecycle events.

Two engines with the same result: ``compiled`` (default) walks each chunk of the trace in numba
(``simkv.sizing.levelwalk`` over ``simkv.sizing.levelkernel``'s arrays, driven by
``simkv.sizing.levelfast``), ``reference`` is the slow, obviously-correct Python twin it is
tested against: each level is the cache state machine (``simkv.cache.statemachine`` via
``simkv.sizing.levelstate``: least recently used first) and the movement between levels is
``simkv.sizing.levelrun``.  The trace is walked as a stream of chunks
(``simkv.trace.stream.TraceSource``), one request at a time:

1. lifecycle events due by the request's arrival are applied (each kind's handler in
   ``simkv.sizing.events``); entries past a level's TTL go;
2. the request is served and written (``simkv.sizing.levelstep``: the served prefix, the
   writes, touches, promotions and demotions).

What carries from one chunk to the next is everything the walk mutates: the level states,
admission counts, template versions, the next event and the next storage-view sample, the
component totals and the counters; per-request records are made per chunk (and handed to a
sink as they come, so a month of records need not sit in memory).  An event is applied before
the first request arriving at or after its time, wherever the chunk boundaries fall, so the
result does not depend on the chunk size (tests: sizes 1, 7, 4096 and the whole trace).
Memory is the level states (per cached chunk: its key, entry and recency slot), the admission
counts (per key seen below HBM with ``second_access``) and one chunk.
"""


from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simkv.cache.engine import resolve_trace_models
from simkv.errors import InputError
from simkv.models.geometry import get_model
from simkv.sizing.events import EVENTS
from simkv.sizing.levelfast import FastLevels, start_chunk, walk_chunk
from simkv.sizing.levelrun import LevelsRun, level_states
from simkv.sizing.levels import Hierarchy
from simkv.sizing.levelstep import Geometry, geometry, request_step
from simkv.sizing.lifecycle import Event, sort_events, trace_events
from simkv.trace.model import TAG_NAMES, Trace
from simkv.trace.stream import TraceSource

#: the per-block column a walk reads besides the chains (content hashes are not needed)
COLUMNS = ("block_tags",)
#: ``simulate_levels`` engines: the compiled walk and the Python reference it is tested against
ENGINES = ("compiled", "reference")
#: receives each chunk's per-request records as they are final
RecordSink = Callable[[pd.DataFrame], None]


@dataclass
class LevelsResult:
    """Per-request ``records`` (None when not kept), the storage view (``timeline``,
    ``bytes_by_model``, ``components``), applied ``events`` and a ``summary`` dict."""

    records: pd.DataFrame | None
    timeline: pd.DataFrame
    bytes_by_model: pd.DataFrame
    components: pd.DataFrame
    events: pd.DataFrame
    summary: dict

    def frames(self) -> dict[str, pd.DataFrame]:
        out = {"records": self.records, "timeline": self.timeline,
               "bytes_by_model": self.bytes_by_model, "components": self.components,
               "events": self.events}
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class _Totals:
    """Sums over the records made so far (the summary's counters)."""

    requests: int = 0
    input_tokens: int = 0
    sums: dict[str, int] = field(default_factory=dict)
    kept: list[pd.DataFrame] = field(default_factory=list)


def trace_span(source: Trace | TraceSource, chunk_requests: int | None = None) -> float:
    """The trace's duration (last arrival - first), read as a stream of arrival times only."""
    source = TraceSource.of(source)
    if source.trace is not None:
        return source.trace.duration_s
    first = last = None
    for chunk in source.chunks(chunk_requests, columns=(), ids_as_keys=True):
        if chunk.n_requests:
            first = float(chunk.arrival_s[0]) if first is None else first
            last = float(chunk.arrival_s[-1])
    return 0.0 if first is None else last - first


def _chunk_geometry(chunk: Trace, model: str | None) -> Trace:
    chunk = resolve_trace_models(chunk, model)
    if not chunk.has_models:
        raise InputError("storage levels hold bytes, so every request needs a model: give --model",
                         where="--model")
    return chunk


def simulate_levels(trace: Trace | TraceSource, hierarchy: Hierarchy, *, model: str | None = None,
                    events: list[Event] | tuple = (), use_trace_events: bool = True,
                    sample_interval_s: float | None = None, chunk_requests: int | None = None,
                    keep: bool = True, sink: RecordSink | None = None,
                    engine: str = "compiled") -> LevelsResult:
    """Replay ``trace`` (an in-memory Trace or a stream) through ``hierarchy`` with lifecycle
    ``events`` (see the module docstring).  ``keep``: hold every request's record in the
    result (False: ``records`` is None, memory bounded); ``sink``: each chunk's records.
    ``engine``: ``compiled`` (``simkv.sizing.levelkernel``, the default) or ``reference``
    (this module's per-request Python loop, the twin the compiled walk is tested against);
    both give the same records and summary."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r} (valid: {', '.join(ENGINES)})",
                         where="engine")
    source = TraceSource.of(trace)
    chunks = source.chunks(chunk_requests, columns=COLUMNS)
    first = next(chunks, None)
    if first is None:
        raise InputError("the trace has no requests", source=source.path)
    first = _chunk_geometry(first, model)
    model_idx = {m: i for i, m in enumerate(first.models)}
    specs = [get_model(m) for m in first.models]
    # a chunk occupies a whole chunk's bytes even when the prompt ends inside it (allocation
    # unit, as vLLM blocks and simkv.cache do); reads count the tokens actually loaded
    chunk_bytes = [[sp.block_bytes(lv.chunk_tokens) for sp in specs] for lv in hierarchy.levels]
    per_token = [sp.kv_bytes_per_token for sp in specs]
    states = level_states(first, hierarchy, model_idx)
    store = None
    if engine == "compiled":
        store = FastLevels(hierarchy, chunk_bytes, per_token, [s.quotas for s in states])
        states = store.levels
    run = LevelsRun(first, hierarchy, model_idx, states)
    all_events = sort_events(list(events) + (trace_events(first.meta) if use_trace_events else []))
    for e in all_events:
        EVENTS.get(e.kind, where="event.kind").check(run, e)
    span = source.trace.duration_s if source.trace is not None else None
    if sample_interval_s is None and span is None:
        span = trace_span(source, chunk_requests)
    interval = sample_interval_s or max(span / 200.0, 1e-9)
    totals = _Totals()
    next_sample, ei, end_t = float("-inf"), 0, 0.0
    pending = None
    chunk: Trace | None = first
    while chunk is not None:
        if pending is not None:  # the previous chunk's records are final now
            _emit(run, pending, totals, keep, sink)
        if chunk is not first:
            chunk = _chunk_geometry(chunk, model)
            run.start_chunk(chunk)
        if store is not None:
            geo = Geometry(chunk_bytes, per_token, [], _approx(chunk, hierarchy), np.empty(0))
            R = start_chunk(run, chunk)
            ei, next_sample = walk_chunk(run, store, chunk, R, all_events, ei, next_sample,
                                         interval, _apply_due)
            if chunk.n_requests:
                end_t = float(chunk.arrival_s[-1])
        else:
            geo = geometry(chunk, hierarchy, chunk_bytes, per_token)
            ei, next_sample, end_t = _walk_reference(run, geo, all_events, ei, next_sample,
                                                     interval, end_t)
        pending = (chunk, totals.requests, geo)
        totals.requests += chunk.n_requests
        chunk = next(chunks, None)
    _apply_due(run, all_events, ei, float("inf"), run.trace.n_requests)
    if store is not None:
        run.evictions, run.expirations = (int(v) for v in store.cnt)
    _emit(run, pending, totals, keep, sink)
    run.snapshot(max(end_t, all_events[-1].time_s if all_events else end_t))
    return _result(run, pending[2], totals, keep)


def _walk_reference(run: LevelsRun, geo: Geometry, events: list[Event], ei: int,
                    next_sample: float, interval: float, end_t: float) -> tuple[int, float, float]:
    """The reference engine over the run's chunk, one request at a time: events due, expiry,
    the storage-view sample, the step.  Returns (next event, next sample, last arrival)."""
    chunk = run.trace
    for r in range(chunk.n_requests):
        t = float(chunk.arrival_s[r])
        ei = _apply_due(run, events, ei, t, r)
        for s in run.state:
            run.expirations += s.expire(t)
        if t >= next_sample:
            run.snapshot(t)
            next_sample = t + interval
        request_step(run, geo, r, t)
        end_t = t
    return ei, next_sample, end_t


def _approx(trace: Trace, hierarchy: Hierarchy) -> list[bool]:
    """Per level: chunks finer than the trace's blocks (approximate re-chunking)."""
    return [lv.chunk_tokens < trace.block_tokens for lv in hierarchy.levels]


def _apply_due(run: LevelsRun, events: list[Event], ei: int, t: float, r: int) -> int:
    """Apply the events due by ``t`` (before the chunk's request ``r``), each followed by a
    snapshot."""
    n_req = run.trace.n_requests
    while ei < len(events) and events[ei].time_s <= t:
        ev = events[ei]
        EVENTS.get(ev.kind, where="event.kind").apply(run, ev, r)
        run.applied.append({"time_s": ev.time_s, "kind": ev.kind, "applied_at_s": (
            float(run.trace.arrival_s[r]) if r < n_req else None),
            "params": ", ".join(f"{k}={v}" for k, v in sorted(ev.params.items()))})
        run.snapshot(ev.time_s)
        ei += 1
    return ei


def _emit(run: LevelsRun, pending: tuple[Trace, int, Geometry], totals: _Totals, keep: bool,
          sink: RecordSink | None) -> None:
    """One chunk's records (the run's current counters), added to the totals and kept/sunk."""
    chunk, offset, _geo = pending
    totals.input_tokens += int(chunk.input_tokens.sum())
    for k, v in run.rec.items():
        totals.sums[k] = totals.sums.get(k, 0) + int(v.sum())
    if not (keep or sink is not None):
        return
    frame = pd.DataFrame({
        "request": np.arange(offset, offset + chunk.n_requests, dtype=np.int64),
        "arrival_s": chunk.arrival_s,
        "model": np.array(chunk.models, dtype=object)[chunk.model_index.astype(np.int64)],
        "input_tokens": chunk.input_tokens, **run.rec, "load_s": run.load_s})
    if sink is not None:
        sink(frame)
    if keep:
        totals.kept.append(frame)


def _summary(run: LevelsRun, geo: Geometry, totals: _Totals) -> dict:
    sums, names = totals.sums, run.names
    total_in = totals.input_tokens
    return {
        "requests": totals.requests, "input_tokens": total_in,
        "hit_tokens": sums["hit_tokens"],
        "token_hit_ratio": float(np.int64(sums["hit_tokens"]) / total_in) if total_in else 0.0,
        **{f"served_tokens_{nm}": sums[f"served_tokens_{nm}"] for nm in names},
        **{f"read_bytes_{nm}": sums[f"read_bytes_{nm}"] for nm in names},
        **{f"written_bytes_{nm}": sums[f"written_bytes_{nm}"] for nm in names},
        "promoted_bytes": sums["promoted_bytes"],
        "demoted_bytes": sums["demoted_bytes"],
        "evicted_bytes": sums["evicted_bytes"],
        "evictions": run.evictions, "expirations": run.expirations,
        **{f"final_used_bytes_{nm}": run.state[i].used for i, nm in enumerate(names)},
        **{f"final_stale_bytes_{nm}": run.state[i].stale for i, nm in enumerate(names)},
        "storage_usd_per_month": float(sum(
            (lv.capacity_bytes or 0) / 1024**3 * lv.price_usd_per_gib_month for lv in run.levels)),
        "placement": run.hierarchy.placement, "admission": run.hierarchy.admission,
        "approximate_levels": [nm for nm, a in zip(names, geo.approx, strict=True) if a],
    }


def _result(run: LevelsRun, geo: Geometry, totals: _Totals, keep: bool) -> LevelsResult:
    records = None
    if keep:
        records = (pd.concat(totals.kept, ignore_index=True) if len(totals.kept) > 1
                   else totals.kept[0])
    components = pd.DataFrame({"component": list(TAG_NAMES), "input_tokens": run.comp_in,
                               "hit_tokens": run.comp_hit})
    components = components[components.input_tokens > 0].reset_index(drop=True)
    components["hit_ratio"] = components.hit_tokens / components.input_tokens
    return LevelsResult(
        records=records, timeline=pd.DataFrame(run.timeline),
        bytes_by_model=pd.DataFrame(run.by_model,
                                    columns=["sample", "time_s", "level", "model", "bytes"]),
        components=components,
        events=pd.DataFrame(run.applied, columns=["time_s", "kind", "applied_at_s", "params"]),
        summary=_summary(run, geo, totals))
