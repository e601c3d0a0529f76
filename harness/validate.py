"""``validate``: replay a trace, predict it with simkv's whole model, compare.

The prediction is the model a user runs, on exactly the requests sent:

- cache hits: vLLM's prefix cache and LMCache's L1 behind it (:mod:`harness.predict`), with
  vLLM's block size and block count read from the server and LMCache's chunk size, L1 capacity
  and eviction settings from the engine config ``serve`` was started with;
- TTFT (with a calibration): each request's computed, locally cached and LMCache-loaded tokens
  priced by the calibrated model (:mod:`simkv.latency.costs`), then the SimPy serving simulation
  (:mod:`simkv.latency.serving`: queueing, prefill batching under vLLM's token budget, chunked
  prefill) at the replay's concurrency.  The client caps requests in flight itself, so the
  predicted TTFT starts when a request gets its slot, as the client's clock does.

Measured: counter deltas, the client's TTFT, and vLLM's own TTFT / queue / prefill histograms
(deltas over the replay) beside them.  :func:`validate` returns a frozen
:class:`ValidateResult`; the CLI writes it as ``validate.json`` / ``validate.parquet``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from harness.engineconfig import EngineConfig
from harness.lmcachelog import ServerTimes, server_times
from harness.measure import Measurement, ReplayOptions, replay_and_measure
from harness.metrics import cache_info
from harness.predict import CachePrediction, EngineCacheSpec, predict
from harness.ttft import predicted_ttft_s
from simkv.cache.vllm_sched import SchedConfig
from simkv.errors import InputError
from simkv.latency.calibrate import Calibration, load_calibration

#: vLLM's default ``max_num_batched_tokens`` for the OpenAI server with chunked prefill
DEFAULT_TOKEN_BUDGET = 2048


@dataclass(frozen=True)
class ValidateOptions:
    replay: ReplayOptions
    engine: EngineConfig | None = None
    calibration: Path | Calibration | None = None
    token_budget: int = DEFAULT_TOKEN_BUDGET
    model_config: str = "tiny-llama-2l"
    #: the LMCache server's own log (DEBUG): its lookup / store / end times and loop wakes
    #: replace the client's clock for the L1 model (:mod:`harness.lmcachelog`)
    lmcache_log: Path | None = None


@dataclass(frozen=True)
class ValidateResult:
    """Measured beside predicted; ``None`` where a side has no figure (said in ``ttft_note``)."""

    requests_sent: int
    skipped: int
    block_tokens: int
    cache_blocks: int
    measured_prefix_queries_tokens: float
    predicted_prefix_queries_tokens: int
    measured_prefix_hit_ratio: float | None
    predicted_prefix_hit_ratio: float
    prefix_hit_abs_error: float | None
    concurrency: int | None
    measured_ttft_p50_s: float | None
    measured_ttft_p90_s: float | None
    measured_ttft_p99_s: float | None
    predicted_ttft_p50_s: float | None = None
    predicted_ttft_p90_s: float | None = None
    ttft_p50_rel_error: float | None = None
    ttft_p90_rel_error: float | None = None
    ttft_note: str = "give --calibration for predicted TTFT"
    server_ttft_p50_s: float | None = None
    server_ttft_p90_s: float | None = None
    lmcache: dict | None = None
    machine: dict | None = None
    server_histograms: dict = field(default_factory=dict)
    skipped_requests: list = field(default_factory=list)
    per_endpoint: dict = field(default_factory=dict)
    replay: dict = field(default_factory=dict)
    #: how vLLM's side was predicted: one after another, or the scheduler emulator (and its
    #: client model: closed loop and the measured arrival delay, or send times on a step clock)
    vllm_model: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = asdict(self)
        if self.lmcache:  # flat keys for the LMCache comparison, as before
            out.update({k: v for k, v in self.lmcache.items() if not isinstance(v, dict)})
        return out


def _times(m: Measurement) -> dict[int, tuple[float, float]]:
    """(lookup, store, end) per sent request on the replay's clock: sent, sent + TTFT, sent +
    E2E."""
    out = {}
    for r in m.records:
        if r.get("status") == "ok" and r.get("sent_s") is not None:
            sent = float(r["sent_s"])
            ttft = float(r.get("ttft_s") or 0.0)
            out[int(r["request"])] = (sent, sent + ttft, sent + max(float(r.get("e2e_s") or 0.0), ttft))
    return out


def _server_clock(m: Measurement, opts: ValidateOptions) -> ServerTimes | None:
    """The LMCache server's own times for this replay, when its log was given."""
    if opts.lmcache_log is None or m.t0_wall_s is None or m.end_wall_s is None:
        return None
    chunk = opts.engine.lmcache_chunk_tokens if opts.engine is not None else 256
    st = server_times(opts.lmcache_log, m.records, m.t0_wall_s, m.end_wall_s, chunk)
    if not st.matched and not st.wakes_s:
        raise InputError("no lookups or eviction-loop wakes of this replay in the log: give "
                         "the log of the LMCache server the replay ran against, started with "
                         "LMCACHE_LOG_LEVEL=DEBUG (serve does)", source=opts.lmcache_log,
                         where="--lmcache-log")
    return st


def _lmcache_side(m: Measurement, pred: dict, pc: CachePrediction,
                  clock: ServerTimes | None = None) -> dict:
    eq = sum(x["external_prefix_cache_queries_tokens"] for x in m.deltas.values())
    eh = sum(x["external_prefix_cache_hits_tokens"] for x in m.deltas.values())
    q = sum(x["prefix_cache_queries_tokens"] for x in m.deltas.values())
    m_ext = eh / eq if eq else None
    ph = pred["external_hit_tokens"]
    counters = {k: sum(c.get(k, 0) for c in pc.l1_counters.values())
                for k in ("ticks", "triggered", "evicted_chunks", "failed_stores", "stored_chunks")}
    return {
        "measured_external_hit_tokens": eh, "predicted_external_hit_tokens": ph,
        "external_hit_tokens_rel_error": abs(ph - eh) / eh if eh else None,
        "measured_external_hit_ratio": m_ext,
        "predicted_external_hit_ratio": pred["external_hit_ratio"],
        "external_hit_abs_error": None if m_ext is None else abs(pred["external_hit_ratio"] - m_ext),
        "measured_external_share_of_prompt": eh / q if q else None,
        "predicted_external_share_of_prompt": ph / pred["prompt_tokens"] if pred["prompt_tokens"] else None,
        "predicted_l1": counters, "lmcache_counters": m.lmcache, "l1_wakes_seen": {u: len(w) for u, w in m.l1_wakes.items()},
        "event_clock": "the LMCache server's log" if clock is not None else
                       "the client's (send, send + TTFT, send + E2E; wakes watched on /metrics)",
        "server_log": clock.as_dict() if clock is not None else None,
    }


def _engine_spec(m: Measurement, opts: ValidateOptions, lmcache: bool,
                 clock: ServerTimes | None = None) -> EngineCacheSpec:
    infos = {e: cache_info(m.after[e]) for e in m.deltas}
    if len({i.block_size for i in infos.values()}) != 1 or \
            len({i.usable_blocks for i in infos.values()}) != 1:
        raise InputError("endpoints differ in block size or cache blocks; validate them one by one")
    info = next(iter(infos.values()))
    l1 = None
    if lmcache:
        if opts.engine is None or not opts.engine.lmcache:
            raise InputError("LMCache metrics given without the engine config that describes "
                             "its L1: give --engine-config (written by serve --engine-config-out)",
                             where="--engine-config")
        l1 = opts.engine.l1_config()
        if clock is not None and clock.wakes_s:  # when the loop woke, from its log
            l1 = replace(l1, wakes_s=clock.wakes_s)
        elif len(m.l1_wakes) == 1:  # when the loop woke, as watched during the replay
            l1 = replace(l1, wakes_s=next(iter(m.l1_wakes.values())))
    c = opts.replay.concurrency
    return EngineCacheSpec(info.block_size, info.usable_blocks, l1, concurrency=c,
                           sched=SchedConfig(token_budget=opts.token_budget,
                                             arrival_delay_steps=arrival_delay_steps(m)),
                           closed_loop=opts.replay.time_scale == 0 and len(m.deltas) == 1,
                           step_s=_decode_step_s(m))


def _vllm_model(spec: EngineCacheSpec) -> dict:
    if (spec.concurrency or 1) <= 1:
        return {"model": "one request after another (exact at one in flight)"}
    return {"model": "scheduler emulator (simkv.cache.vllm_sched)",
            "token_budget": spec.sched.token_budget, "closed_loop": spec.closed_loop,
            "arrival_delay_steps": spec.sched.arrival_delay_steps if spec.closed_loop else None,
            "step_s": None if spec.closed_loop else spec.step_s}


def arrival_delay_steps(m: Measurement) -> int:
    """Engine steps between a request's end and its closed-loop successor being seen.

    The client's TTFT exceeds the server's (vLLM's histogram, from when its front end took
    the request) by the request's trip in and the first token's trip out; in the closed loop
    the same two trips (the last token out, the next request in) separate a finish from the
    next arrival, while the engine keeps stepping, one step per decode gap (the mean
    inter-token gap the client saw).  Measured here: 0.7-5 steps, median 1.5 (docs/harness.md);
    without the server histogram or decode gaps, the emulator's default.
    """
    ok = [r for r in m.records if r.get("status") == "ok" and r.get("ttft_s") is not None]
    hist = next(iter(m.histograms.values()), {}) if len(m.histograms) == 1 else {}
    server = hist.get("time_to_first_token_seconds", {}).get("mean_s")
    gaps = [g for r in ok for g in (r.get("itl_list_s") or [])]
    step = float(np.mean(gaps)) if gaps else 0.0
    if server is None or not ok or step <= 0:
        return SchedConfig().arrival_delay_steps
    trips = float(np.mean([r["ttft_s"] for r in ok])) - server
    return max(0, int(np.ceil(trips / step)))


def _decode_step_s(m: Measurement) -> float | None:
    """The replay's measured decode step: the median inter-token gap over all requests (the
    scheduler emulator's clock when arrivals come at send times, not in a closed loop)."""
    gaps = [g for r in m.records if r.get("status") == "ok" for g in (r.get("itl_list_s") or [])]
    return float(np.median(gaps)) if gaps else None


def compare(m: Measurement, opts: ValidateOptions) -> ValidateResult:
    """Measured (metric deltas, client and server timing) beside the whole-model prediction."""
    return _compare(m, opts)[0]


def _compare(m: Measurement, opts: ValidateOptions) -> tuple[ValidateResult, TtftPairs | None]:
    lmcache = bool(m.lmcache)
    clock = _server_clock(m, opts) if lmcache and len(m.deltas) == 1 else None
    spec = _engine_spec(m, opts, lmcache, clock)
    info = cache_info(next(iter(m.after.values())))
    ok = {int(r["request"]) for r in m.records if r["status"] == "ok"}
    times = _times(m)
    if clock is not None:
        times.update(clock.times)
    pc = predict(m.plan, ok, spec, times)
    pred = pc.summary()
    q = sum(x["prefix_cache_queries_tokens"] for x in m.deltas.values())
    h = sum(x["prefix_cache_hits_tokens"] for x in m.deltas.values())
    measured = h / q if q else None
    s = m.summary
    hist = next(iter(m.histograms.values()), {}) if len(m.histograms) == 1 else {}
    ttft_hist = hist.get("time_to_first_token_seconds", {})
    fields_ = dict(
        requests_sent=len(ok), skipped=s["skipped"], block_tokens=info.block_size,
        cache_blocks=info.num_gpu_blocks, measured_prefix_queries_tokens=q,
        predicted_prefix_queries_tokens=pred["prompt_tokens"], measured_prefix_hit_ratio=measured,
        predicted_prefix_hit_ratio=pred["prefix_hit_ratio"],
        prefix_hit_abs_error=None if measured is None else abs(pred["prefix_hit_ratio"] - measured),
        concurrency=opts.replay.concurrency, measured_ttft_p50_s=s["ttft_p50_s"],
        measured_ttft_p90_s=s["ttft_p90_s"], measured_ttft_p99_s=s["ttft_p99_s"],
        server_ttft_p50_s=ttft_hist.get("p50_s"), server_ttft_p90_s=ttft_hist.get("p90_s"),
        lmcache=_lmcache_side(m, pred, pc, clock) if lmcache else None, machine=s.get("machine"),
        server_histograms=m.histograms, skipped_requests=s["skipped_requests"],
        per_endpoint=m.deltas, replay={k: v for k, v in s.items() if k != "skipped_requests"},
        vllm_model=_vllm_model(spec))
    pairs = None
    if opts.calibration is not None:
        name = getattr(opts.calibration, "name", "given")
        if not isinstance(opts.calibration, Calibration):  # read the YAML once
            opts = replace(opts, calibration=load_calibration(Path(opts.calibration)))
        pairs = ttft_pairs(m, pc, opts)
        fields_.update(ttft_errors(*pairs) if pairs is not None
                       else {"ttft_note": "no measured TTFT to compare with"})
        if pairs is not None:
            fields_["ttft_note"] = _ttft_note(opts, name)
    return ValidateResult(**fields_), pairs


#: (predicted, measured) TTFT in seconds of the requests measured, in send order
TtftPairs = tuple[np.ndarray, np.ndarray]


def ttft_pairs(m: Measurement, pc: CachePrediction, opts: ValidateOptions) -> TtftPairs | None:
    """Calibrated per-request costs through the serving simulation at the replay's concurrency,
    beside the client's measured TTFT, for the requests that have one."""
    ttft, req_ids = predicted_ttft_s(m.plan, pc, opts.calibration, concurrency=opts.replay.concurrency,
                                     token_budget=opts.token_budget,
                                     model_config=(opts.engine.model_config if opts.engine
                                                   else opts.model_config))
    measured = {int(r["request"]): r["ttft_s"] for r in m.records
                if r["status"] == "ok" and r.get("ttft_s") is not None}
    keep = [i for i, r in enumerate(req_ids) if r in measured]
    if not keep:
        return None
    return ttft[keep], np.asarray([measured[req_ids[i]] for i in keep], dtype=np.float64)


def ttft_errors(predicted: np.ndarray, measured: np.ndarray) -> dict:
    """p50 / p90 of each side and their relative errors."""
    p50, p90 = (float(v) for v in np.percentile(predicted, [50, 90]))
    m50, m90 = (float(v) for v in np.percentile(measured, [50, 90]))
    return {"predicted_ttft_p50_s": p50, "predicted_ttft_p90_s": p90,
            "measured_ttft_p50_s": m50, "measured_ttft_p90_s": m90,
            "ttft_p50_rel_error": abs(p50 - m50) / m50, "ttft_p90_rel_error": abs(p90 - m90) / m90}


def _ttft_note(opts: ValidateOptions, name: str) -> str:
    calib = opts.calibration
    trip = (f"; client trip +{1e3 * calib.extra_trip_s(opts.replay.concurrency):.1f} ms over one "
            "in flight (measured at calibration)" if calib.client_trip_s else "")
    return (f"calibration {name}; serving simulation at concurrency "
            f"{opts.replay.concurrency or 'unlimited'}, token budget {opts.token_budget}{trip}")


@dataclass(frozen=True)
class PooledResult:
    """Several replays of one trace (each its own salt) compared one by one, and their TTFT
    pooled: the p50 / p90 of all their requests on each side.  Pooling is what makes a TTFT
    figure repeatable on a small shared machine, where the same trace's p50 moves from one
    replay to the next by more than the goals (docs/harness.md has the figures)."""

    replays: list[ValidateResult]
    ttft: dict

    def cache(self) -> dict:
        """Hits pooled the same way: prefix hit ratios as all replays' hit tokens over their
        query tokens on each side, LMCache's external hit tokens summed on each side."""
        rs = [r for r in self.replays if r.measured_prefix_hit_ratio is not None]
        out: dict = {}
        if rs:
            mq = sum(r.measured_prefix_queries_tokens for r in rs)
            pq = sum(r.predicted_prefix_queries_tokens for r in rs)
            m = sum(r.measured_prefix_hit_ratio * r.measured_prefix_queries_tokens for r in rs) / mq
            p = sum(r.predicted_prefix_hit_ratio * r.predicted_prefix_queries_tokens for r in rs) / pq
            out.update(measured_prefix_hit_ratio=m, predicted_prefix_hit_ratio=p,
                       prefix_hit_abs_error=abs(p - m),
                       prefix_hit_abs_error_max=max(r.prefix_hit_abs_error for r in rs))
        lm = [r.lmcache for r in self.replays if r.lmcache]
        if lm and len(lm) == len(self.replays):
            me = sum(x["measured_external_hit_tokens"] for x in lm)
            pe = sum(x["predicted_external_hit_tokens"] for x in lm)
            out.update(measured_external_hit_tokens=me, predicted_external_hit_tokens=pe,
                       external_hit_tokens_rel_error=abs(pe - me) / me if me else None)
        return out

    def as_dict(self) -> dict:
        return {"repeats": len(self.replays), **self.ttft, **self.cache(),
                "replays": [r.as_dict() for r in self.replays]}


def compare_pooled(ms: list[Measurement], opts: list[ValidateOptions]) -> PooledResult:
    """Each replay compared alone, and the TTFT of all of them pooled (when calibrated)."""
    results, pairs = zip(*(_compare(m, o) for m, o in zip(ms, opts, strict=True)), strict=True)
    have = [p for p in pairs if p is not None]
    ttft = ttft_errors(np.concatenate([p[0] for p in have]), np.concatenate([p[1] for p in have])) \
        if have else {}
    return PooledResult(list(results), ttft)


def validate(trace: Path, opts: ValidateOptions, *, say: Callable[[str], None] = lambda _m: None,
             on_record: Callable[[dict], None] | None = None) -> ValidateResult:
    """Replay ``trace`` with ``opts`` and compare it with simkv's prediction."""
    m = replay_and_measure(trace, opts.replay, say=say, on_record=on_record)
    return compare(m, opts)
