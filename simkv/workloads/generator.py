"""Workload generator: a spec and a seed -> a Trace with chained and content block hashes.

Three phases, exposed separately so the benchmark can time them:

1. :func:`plan` draws everything random, vectorised, from one ``SeedSequence(seed).spawn``
   stream per purpose (adding a stream never shifts the others): session arrivals
   (non-homogeneous Poisson: rate x diurnal weight x bursts, by inverting the cumulative
   intensity of a unit-rate process), per-session turns, model, tenant, system template and
   tool set, per-turn think time, retrieved documents, user and output lengths.  Draws are
   sequential in session/turn order, so a shorter window is a prefix of a longer one.
2. :func:`run_sessions` runs one SimPy process per multi-turn session (a source process issues
   every session's first turn at its arrival and starts the process, which issues each later
   turn after the think time; single-turn sessions need no process).  The event
   loop gives the requests in arrival order; requests at or after the window end are dropped.
3. :func:`assemble` (or :func:`chunks`, a chunk of requests at a time, for writing a long
   trace in bounded memory) lays out each request's prompt as segments (system template version,
   tool set version, history, retrieved documents, user message), then hashes every block in
   numba (``simkv.hashing``).

Prompt layout of turn ``j`` of a session::

    [system vX] [tools vY] [history: for earlier turns j' in the window:
                            (documents of j' if history.include_documents) user j' output j']
    [documents retrieved for j] [user message j]

A template's version at a request is the number of template changes at or before its arrival
(a change applies to every template of the component, from that instant, also mid-session):
new content, so new chained hashes from that block on; the old entries go stale.

Lifecycle events (``trace.meta["events"]``, for sizing replays) are a list of dicts sorted by
time, each with ``time_s`` and ``kind``:

- ``{"time_s": t, "kind": "template_change", "component": "system"|"tools", "version": v}``:
  every template of the component switches to version ``v`` (1, 2, ...) at ``t``;
- ``{"time_s": t, "kind": "reset"}``: the spec's ``resets`` (the user empties the cache
  bucket at ``t``; the generator changes no hashes for it).

Other ``trace.meta`` keys: ``generator``, ``spec_name``, ``spec_digest`` (of the validated
YAML), ``seed``, ``window_s``, ``spec_duration_s``, ``sessions``,
``content_hash_unit_tokens``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import simpy

from simkv.hashing import combine, content_unit_tokens, hash_segments, key_of
from simkv.trace.model import Trace
from simkv.workloads.layout import build_segments
from simkv.workloads.model import Templates, WorkloadSpec

#: One random stream per purpose, in this fixed order (append new ones at the end).
STREAMS: tuple[str, ...] = (
    "arrivals", "turns", "think", "model", "tenant",
    "system_presence", "system_pick", "system_tokens",
    "tools_presence", "tools_pick", "tools_tokens",
    "doc_tokens", "doc_presence", "doc_count", "doc_pick",
    "user_tokens", "output_tokens",
)
DAY_S = 86400.0
HOUR_S = 3600.0


def streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(int(seed)).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}


# --------------------------------------------------------------------------- arrivals
def intensity(spec: WorkloadSpec, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-constant session rate: breakpoints (s) and rate (sessions/s) on each piece."""
    arr = spec.arrivals
    edges = {0.0, window_s}
    if arr.diurnal is not None:
        edges.update(np.arange(HOUR_S, window_s, HOUR_S).tolist())
    bursts: list[tuple[float, float, float]] = []
    for b in arr.bursts:
        start = b.start_s
        while start < window_s:
            bursts.append((start, min(start + b.duration_s, window_s), b.multiplier))
            edges.update((start, min(start + b.duration_s, window_s)))
            if b.repeat_every_s is None:
                break
            start += b.repeat_every_s
    bp = np.array(sorted(e for e in edges if 0.0 <= e <= window_s))
    mid = (bp[:-1] + bp[1:]) / 2
    rate = np.full(len(mid), arr.rate_per_day / DAY_S)
    if arr.diurnal is not None:
        w = np.asarray(arr.diurnal, dtype=np.float64)
        w = w * 24.0 / w.sum()
        rate *= w[(mid // HOUR_S).astype(np.int64) % 24]
    for start, end, mult in bursts:
        rate[(mid >= start) & (mid < end)] *= mult
    return bp, rate


def session_starts(spec: WorkloadSpec, window_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of sessions in [0, window_s)."""
    bp, rate = intensity(spec, window_s)
    cum = np.concatenate([[0.0], np.cumsum(rate * np.diff(bp))])
    total = cum[-1]
    chunks, last = [], 0.0
    while last <= total:
        size = int(total * 1.02 + 10 * np.sqrt(total + 1) + 16)
        e = last + np.cumsum(rng.standard_exponential(size))
        chunks.append(e)
        last = e[-1]
    e = np.concatenate(chunks)
    e = e[e < total]
    idx = np.clip(np.searchsorted(cum, e, side="right") - 1, 0, len(rate) - 1)
    r = rate[idx]
    t = bp[idx] + np.where(r > 0, (e - cum[idx]) / np.where(r > 0, r, 1.0), 0.0)
    return np.minimum(np.maximum.accumulate(t), np.nextafter(window_s, 0))


# --------------------------------------------------------------------------- plan
def zipf_pick(rng: np.random.Generator, n_items: int, exponent: float, size: int) -> np.ndarray:
    """``size`` draws of item ranks 0..n_items-1 with P(i) proportional to (i+1)^-exponent."""
    w = np.arange(1, n_items + 1, dtype=np.float64) ** -float(exponent)
    cdf = np.cumsum(w / w.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n_items - 1)


def change_times(t: Templates | None, window_s: float) -> np.ndarray:
    """Sorted template-change times within the window."""
    if t is None:
        return np.zeros(0)
    times = set(x for x in t.change_at_s if 0 < x < window_s)
    if t.change_every_s is not None:
        times.update(np.arange(t.change_every_s, window_s, t.change_every_s).tolist())
    return np.array(sorted(times), dtype=np.float64)


@dataclass(frozen=True)
class Plan:
    """All random draws of one generation (arrays indexed by session or by flat turn)."""

    spec: WorkloadSpec
    window_s: float
    start_s: np.ndarray          # per session
    turns: np.ndarray            # per session
    turn_base: np.ndarray        # per session: index of its first turn in the flat turn arrays
    model: np.ndarray            # per session
    tenant: np.ndarray           # per session
    system_template: np.ndarray  # per session, -1 = no system prompt
    tools_template: np.ndarray   # per session, -1 = no tools
    system_tokens: np.ndarray    # [version, template]
    tools_tokens: np.ndarray     # [version, template]
    system_changes_s: np.ndarray
    tools_changes_s: np.ndarray
    think_s: np.ndarray          # per turn: time to the session's next turn
    user_tokens: np.ndarray      # per turn
    output_tokens: np.ndarray    # per turn
    doc_offsets: np.ndarray      # per turn + 1, into doc_ids
    doc_ids: np.ndarray
    doc_tokens: np.ndarray       # per document of the corpus

    @property
    def n_sessions(self) -> int:
        return len(self.start_s)


def _templates(t: Templates | None, n: int, changes: np.ndarray, rs: dict, prefix: str
               ) -> tuple[np.ndarray, np.ndarray]:
    if t is None:
        return np.full(n, -1, dtype=np.int64), np.zeros((1, 1), dtype=np.int64)
    present = rs[f"{prefix}_presence"].random(n) < t.probability
    pick = zipf_pick(rs[f"{prefix}_pick"], t.count, t.zipf, n)
    lengths = np.stack([t.tokens.sample_int(rs[f"{prefix}_tokens"], t.count, floor=1)
                        for _ in range(len(changes) + 1)])
    return np.where(present, pick, -1), lengths


def plan(spec: WorkloadSpec, window_s: float | None = None) -> Plan:
    """Draw every random quantity of a generation over ``[0, window_s)``."""
    window_s = float(spec.duration_s if window_s is None else window_s)
    rs = streams(spec.seed)
    start = session_starts(spec, window_s, rs["arrivals"])
    n = len(start)
    turns = spec.turns.sample_int(rs["turns"], n, floor=1)
    turn_base = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(turns, out=turn_base[1:])
    q = int(turn_base[-1])
    think = np.maximum(spec.think_time_s.sample(rs["think"], q), 0.0)
    w = np.asarray(spec.model_weights, dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    model = np.minimum(np.searchsorted(cdf, rs["model"].random(n), side="right"), len(w) - 1)
    tn = spec.tenants
    tenant = (zipf_pick(rs["tenant"], tn.count, tn.zipf, n) if tn.zipf is not None
              else rs["tenant"].integers(0, tn.count, n))
    sys_changes = change_times(spec.system, window_s)
    tools_changes = change_times(spec.tools, window_s)
    sys_t, sys_len = _templates(spec.system, n, sys_changes, rs, "system")
    tools_t, tools_len = _templates(spec.tools, n, tools_changes, rs, "tools")
    d = spec.documents
    if d is None:
        doc_tokens = np.zeros(1, dtype=np.int64)
        counts = np.zeros(q, dtype=np.int64)
        doc_ids = np.zeros(0, dtype=np.int64)
    else:
        doc_tokens = d.tokens.sample_int(rs["doc_tokens"], d.corpus, floor=1)
        present = rs["doc_presence"].random(q) < d.probability
        counts = d.per_request.sample_int(rs["doc_count"], q, floor=0) * present
        doc_ids = zipf_pick(rs["doc_pick"], d.corpus, d.zipf, int(counts.sum()))
    doc_offsets = np.zeros(q + 1, dtype=np.int64)
    np.cumsum(counts, out=doc_offsets[1:])
    return Plan(
        spec=spec, window_s=window_s, start_s=start, turns=turns, turn_base=turn_base[:-1],
        model=model.astype(np.int64), tenant=tenant.astype(np.int64),
        system_template=sys_t.astype(np.int64), tools_template=tools_t.astype(np.int64),
        system_tokens=sys_len, tools_tokens=tools_len,
        system_changes_s=sys_changes, tools_changes_s=tools_changes, think_s=think,
        user_tokens=spec.user_tokens.sample_int(rs["user_tokens"], q, floor=1),
        output_tokens=spec.output_tokens.sample_int(rs["output_tokens"], q, floor=1),
        doc_offsets=doc_offsets, doc_ids=doc_ids.astype(np.int64), doc_tokens=doc_tokens,
    )


# --------------------------------------------------------------------------- SimPy
@dataclass(frozen=True)
class Requests:
    """The requests the sessions issued, in arrival order."""

    session: np.ndarray
    turn: np.ndarray
    arrival_s: np.ndarray


def run_sessions(p: Plan) -> Requests:
    """One SimPy process per session; each turn is a request, think time apart."""
    env = simpy.Environment()
    # typed buffers (8 bytes a value, not a Python object): a month of requests stays small
    out_s, out_j, out_t = array("q"), array("q"), array("d")
    starts = p.start_s.tolist()
    turns = p.turns.tolist()
    base = p.turn_base.tolist()
    think = p.think_s.tolist()

    def session(s: int):
        # turn 0 was issued by the source; later turns follow after each think time
        q0, nt = base[s], turns[s]
        for j in range(1, nt):
            yield env.timeout(think[q0 + j - 1])
            out_s.append(s)
            out_j.append(j)
            out_t.append(env.now)

    def source():
        for s in range(len(starts)):
            delay = starts[s] - env.now
            if delay > 0:
                yield env.timeout(delay)
            out_s.append(s)
            out_j.append(0)
            out_t.append(env.now)
            if turns[s] > 1:  # single-turn sessions need no process of their own
                env.process(session(s))

    env.process(source())
    env.run(until=p.window_s)
    return Requests(np.frombuffer(out_s, dtype=np.int64), np.frombuffer(out_j, dtype=np.int64),
                    np.frombuffer(out_t, dtype=np.float64))


# --------------------------------------------------------------------------- segments
def _template_ids(templates: np.ndarray, changes: np.ndarray, lengths: np.ndarray,
                  arrival: np.ndarray, space: np.ndarray, kind: str, run_key: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    present = templates >= 0
    version = np.searchsorted(changes, arrival, side="right")
    t = np.where(present, templates, 0)
    ids = combine(combine(combine(np.uint64(key_of(kind, run_key)), space), t), version)
    lens = np.where(present, lengths[version, t], 0)
    return ids.astype(np.uint64), lens.astype(np.int64)


@dataclass(frozen=True)
class Segments:
    """Every request's prompt as flat segment lists, with its root salt."""

    offsets: np.ndarray  # per request + 1
    ids: np.ndarray
    lengths: np.ndarray
    tags: np.ndarray
    input_tokens: np.ndarray  # per request
    salts: np.ndarray  # per request


def segments(p: Plan, reqs: Requests) -> Segments:
    """Lay out every request's prompt as segments (module docstring) with its salt."""
    spec = p.spec
    s, j, t = reqs.session, reqs.turn, reqs.arrival_s
    q = p.turn_base[s] + j
    tn = spec.tenants
    tenant = p.tenant[s]
    model = p.model[s]
    run_key = key_of("simkv-workload-run", spec.seed)
    space = (np.zeros_like(tenant) if tn.shared_content else tenant + 1).astype(np.uint64)
    sys_id, sys_len = _template_ids(p.system_template[s], p.system_changes_s, p.system_tokens,
                                    t, space, "system", run_key)
    tools_id, tools_len = _template_ids(p.tools_template[s], p.tools_changes_s, p.tools_tokens,
                                        t, space, "tools", run_key)
    h = spec.history
    hist_turns = -1 if h.mode == "full" else (0 if h.mode == "none" else int(h.window_turns))
    seg_off, seg_ids, seg_lens, seg_tags, tokens = build_segments(
        q, j, hist_turns, h.include_documents, sys_id, sys_len, tools_id, tools_len,
        space, p.doc_offsets, p.doc_ids, p.doc_tokens, p.user_tokens, p.output_tokens,
        np.uint64(key_of("user", run_key)), np.uint64(key_of("output", run_key)),
        np.uint64(key_of("document", run_key)))
    model_keys = np.array([key_of("model", name) for name in spec.models], dtype=np.uint64)
    tenant_salt = (tenant + 1).astype(np.uint64) if tn.isolated else np.zeros(len(s), np.uint64)
    salts = combine(model_keys[model], tenant_salt)
    return Segments(seg_off, seg_ids, seg_lens, seg_tags, tokens, salts)


def assemble(p: Plan, reqs: Requests) -> Trace:
    """Lay out and hash every request's prompt; build the Trace."""
    spec = p.spec
    s, j, t = reqs.session, reqs.turn, reqs.arrival_s
    q = p.turn_base[s] + j
    seg = segments(p, reqs)
    tokens = seg.input_tokens
    B = spec.block_tokens
    unit = content_unit_tokens(B)
    offsets = np.zeros(len(s) + 1, dtype=np.int64)
    np.cumsum(-(-tokens // B), out=offsets[1:])
    n_blocks = int(offsets[-1])
    hashes = np.empty(n_blocks, dtype=np.uint64)
    content = np.empty(n_blocks, dtype=np.uint64)
    tags = np.empty(n_blocks, dtype=np.int8)
    hash_segments(seg.offsets, seg.ids, seg.lengths, seg.tags, seg.salts, offsets, B, unit,
                  hashes, content, tags)
    return Trace.from_arrays(
        block_tokens=B, arrival_s=t, session_ids=s, tenant_ids=p.tenant[s], model_index=p.model[s],
        models=spec.models, input_tokens=tokens, output_tokens=p.output_tokens[q],
        block_offsets=offsets, block_hashes=hashes, block_tags=tags, content_hashes=content,
        meta=_meta(p),
    )


def events(p: Plan) -> list[dict]:
    """Lifecycle events in the window (format in the module docstring)."""
    out = []
    for comp, times in (("system", p.system_changes_s), ("tools", p.tools_changes_s)):
        out += [{"time_s": float(x), "kind": "template_change", "component": comp,
                 "version": v + 1} for v, x in enumerate(times)]
    out += [{"time_s": float(x), "kind": "reset"} for x in p.spec.resets_s if x < p.window_s]
    return sorted(out, key=lambda e: (e["time_s"], e["kind"], e.get("component", "")))


def _meta(p: Plan) -> dict:
    spec = p.spec
    return {
        "generator": "simkv.workloads", "spec_name": spec.name, "spec_digest": spec.digest,
        "seed": spec.seed, "window_s": p.window_s, "spec_duration_s": spec.duration_s,
        "sessions": p.n_sessions, "content_hash_unit_tokens": content_unit_tokens(spec.block_tokens),
        "events": events(p),
    }


def generate(spec: WorkloadSpec, window_s: float | None = None) -> Trace:
    """The Trace of ``spec`` over ``[0, window_s)`` (default: the spec's duration): one chunk."""
    p = plan(spec, window_s)
    return assemble(p, run_sessions(p))


def chunks(p: Plan, reqs: Requests, chunk_requests: int) -> Iterator[Trace]:
    """The same trace as :func:`assemble`, ``chunk_requests`` requests at a time: a request's
    prompt depends only on the plan, so each chunk is laid out and hashed on its own, and
    memory holds one chunk's blocks rather than the whole trace's."""
    n = len(reqs.session)
    for a in range(0, n, chunk_requests):
        b = min(n, a + chunk_requests)
        yield assemble(p, Requests(reqs.session[a:b], reqs.turn[a:b], reqs.arrival_s[a:b]))
