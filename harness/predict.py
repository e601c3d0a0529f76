"""simkv's cache prediction for the requests a replay actually sent, by the engines' own rules.

The token sequences sent are hashed at the engine's block size (read from its metrics) and at
LMCache's chunk size, per endpoint (the same routing as the replay).  vLLM's prefix cache is
:class:`simkv.cache.vllm_policy.VllmBlockPool`; LMCache's L1 behind it is
:class:`simkv.cache.lmcache_policy.LMCacheL1` (one-second eviction loop, all-or-nothing
stores).  Events run in time order on the replay's own clock (LMCache's loop runs on wall
time): a request looks up both caches when it is sent, LMCache stores its new full chunks when
its prefill ends (``sent + TTFT``) and reorders its chunks when it ends (``sent + E2E``).
vLLM's own blocks: at one request in flight they are served one request after another
(:meth:`VllmBlockPool.run_request`, exact on every run measured); with several in flight the
engine's scheduler decides what hits (it looks up when it admits a request, admits several per
step, pins their blocks, defers what does not fit, chunks prefills, preempts), so the step-level
emulator :class:`simkv.cache.vllm_sched.VllmScheduler` serves them, fed the client's arrivals:
a closed loop of ``concurrency`` (``--time-scale 0``: the next request arrives when one ends),
or else the measured send times on a step clock of the replay's measured decode step (median
inter-token latency).  LMCache's L1 is independent of vLLM's blocks (it sees every lookup and
store whatever vLLM holds), so it runs on the replay's clock as above and hands the emulator
its hit per request; vLLM's external hit is ``max(0, lmcache - local hit at admission)``.
Requests skipped as too long are left out of both the measured and the predicted figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from harness.plan import PlannedRequest
from harness.prompts import chained_keys
from simkv.cache.lmcache_policy import L1Config, LMCacheL1
from simkv.cache.vllm_policy import TieredPrediction, VllmBlockPool
from simkv.cache.vllm_sched import SchedConfig, SchedResult, VllmScheduler


@dataclass(frozen=True)
class EngineCacheSpec:
    block_tokens: int
    usable_blocks: int | None
    l1: L1Config | None = None  # LMCache's L1 behind vLLM (None: no LMCache)
    #: requests in flight: None or 1 one after another, else the scheduler emulator
    concurrency: int | None = None
    sched: SchedConfig = SchedConfig()
    #: the emulator's arrivals: closed loop (``--time-scale 0``), else send times / step_s
    closed_loop: bool = True
    step_s: float | None = None


@dataclass(frozen=True)
class CachePrediction:
    per_endpoint: dict[str, TieredPrediction]
    l1_counters: dict[str, dict]
    request_ids: dict[str, np.ndarray]  # per endpoint: the request of each prediction row
    #: per endpoint, when the scheduler emulator served it (concurrency > 1): its step trace
    schedules: dict[str, SchedResult] = field(default_factory=dict)

    def summary(self) -> dict:
        return combine(self.per_endpoint)


def _events(reqs: list[PlannedRequest], times: dict[int, tuple[float, ...]]) -> list[tuple]:
    ev = []
    for k, r in enumerate(reqs):
        look, store, end = _three(times[r.request]) if r.request in times else (r.scheduled_s,) * 3
        ev.append((look, 0, k))
        ev.append((max(store, look), 1, k))
        ev.append((max(end, store, look), 2, k))
    ev.sort()
    return ev


def _three(t: tuple[float, ...]) -> tuple[float, float, float]:
    look = t[0]
    store = t[1] if len(t) > 1 else look
    return look, store, t[2] if len(t) > 2 else store


def _l1_hits(reqs: list[PlannedRequest], l1: LMCacheL1, chunks: list, prompt: np.ndarray,
             times: dict[int, tuple[float, ...]]) -> np.ndarray:
    """LMCache's hit (chunks) per request: lookups, stores and end-of-request touches on the
    replay's clock (the L1 does not depend on what vLLM holds)."""
    ct = l1.config.chunk_tokens
    l1_hit = np.zeros(len(reqs), dtype=np.int64)
    for when, kind, k in _events(reqs, times):
        p = int(prompt[k])
        if kind == 0:
            l1_hit[k] = l1.lookup(chunks[k], p, when)
        elif kind == 1:  # prefill done: the connector stores the full chunks LMCache lacks
            l1.store(chunks[k], int(l1_hit[k]), p // ct, when)
        else:  # request ended: LMCache touches its chunks
            l1.finish(chunks[k], p, when)
    return l1_hit


def _serial(pool: VllmBlockPool, keys: list, prompt: np.ndarray, out_tokens: list[int],
            ext_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One request after another (exact at one in flight)."""
    n = len(keys)
    local, ext, evictions = (np.zeros(n, dtype=np.int64) for _ in range(3))
    for k in range(n):
        p = int(prompt[k])
        hit_local = pool.lookup(keys[k], p) * pool.block_tokens
        ext[k] = max(0, int(ext_in[k]) - hit_local)
        o = pool.run_request(keys[k], p, out_tokens[k])
        local[k] = o.hit_blocks * pool.block_tokens
        evictions[k] = o.evictions
    return local, ext, evictions


def _predict_endpoint(reqs: list[PlannedRequest], spec: EngineCacheSpec,
                      times: dict[int, tuple[float, float]]
                      ) -> tuple[TieredPrediction, dict, SchedResult | None]:
    toks = [np.asarray(r.prompt, dtype=np.int64) for r in reqs]
    keys = [chained_keys(t, spec.block_tokens) for t in toks]
    pool = VllmBlockPool(spec.usable_blocks, spec.block_tokens)
    prompt = np.asarray([len(t) for t in toks], dtype=np.int64)
    out_tokens = [r.max_tokens for r in reqs]
    ext_in = np.zeros(len(reqs), dtype=np.int64)
    l1 = None
    if spec.l1 is not None:
        l1 = LMCacheL1(spec.l1)
        chunks = [chained_keys(t, spec.l1.chunk_tokens, full_only=True) for t in toks]
        ext_in = _l1_hits(reqs, l1, chunks, prompt, times) * spec.l1.chunk_tokens
    if (spec.concurrency or 1) > 1:
        arrival = None
        if not spec.closed_loop:
            sent = np.asarray([times[r.request][0] if r.request in times else r.scheduled_s
                               for r in reqs])
            arrival = np.ceil((sent - sent.min(initial=0.0)) / (spec.step_s or 1.0)).astype(np.int64)
        res = VllmScheduler(pool, spec.sched).run(keys, prompt, out_tokens, external_tokens=ext_in,
                                                  arrival_step=arrival,
                                                  concurrency=spec.concurrency)
        local, ext, evictions = res.local_hit_tokens, res.external_hit_tokens, res.evictions
    else:
        res = None
        local, ext, evictions = _serial(pool, keys, prompt, out_tokens, ext_in)
    counters = asdict(l1.counters) if l1 is not None else {}
    return TieredPrediction(prompt, local, ext, evictions), counters, res


def predict(plan: list[PlannedRequest], sent: set[int], spec: EngineCacheSpec,
            times: dict[int, tuple[float, float]] | None = None) -> CachePrediction:
    """Per endpoint: predicted local / external hit tokens of the sent requests.

    ``times[request] = (lookup_s, store_s, end_s)`` on one clock; by default the planned send
    time for all three.
    """
    times = times or {}
    per, counters, ids, scheds = {}, {}, {}, {}
    for ep in sorted({r.endpoint for r in plan}):
        reqs = [r for r in plan if r.endpoint == ep and r.request in sent]
        reqs.sort(key=lambda r: (times.get(r.request, (r.scheduled_s,))[0], r.request))
        per[ep], counters[ep], sched = _predict_endpoint(reqs, spec, times)
        ids[ep] = np.asarray([r.request for r in reqs], dtype=np.int64)
        if sched is not None:
            scheds[ep] = sched
    return CachePrediction(per, counters, ids, scheds)


def combine(preds: dict[str, TieredPrediction]) -> dict:
    """One summary over all endpoints."""
    if not preds:
        return TieredPrediction(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                np.zeros(0, np.int64), np.zeros(0, np.int64)).summary()
    cat = TieredPrediction(*(np.concatenate([getattr(p, f) for p in preds.values()])
                             for f in ("prompt_tokens", "local_hit_tokens",
                                       "external_hit_tokens", "evictions")))
    return cat.summary()
