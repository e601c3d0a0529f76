"""simkv's cache prediction for the requests a replay actually sent, by the engines' own rules.

The token sequences sent are hashed at the engine's block size (read from its metrics) and at
LMCache's chunk size, per endpoint (the same routing as the replay).  vLLM's prefix cache is
:class:`simkv.cache.vllm_policy.VllmBlockPool`; LMCache's L1 behind it is
:class:`simkv.cache.lmcache_policy.LMCacheL1` (one-second eviction loop, all-or-nothing
stores).  Events run in time order on the replay's own clock (LMCache's loop runs on wall
time): a request looks up both caches when it is sent, LMCache stores its new full chunks when
its prefill ends (``sent + TTFT``) and reorders its chunks when it ends (``sent + E2E``).
vLLM's own blocks are served one request after another at its lookup (requests in flight at
once pin more blocks in the engine and its scheduler defers those that do not fit; not modelled:
measured 0.014-0.015 off on prefix hits at 8 in flight, see docs/harness.md).
Requests skipped as too long are left out of both the measured and the predicted figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from harness.plan import PlannedRequest
from harness.prompts import chained_keys
from simkv.cache.lmcache_policy import L1Config, LMCacheL1
from simkv.cache.vllm_policy import TieredPrediction, VllmBlockPool


@dataclass(frozen=True)
class EngineCacheSpec:
    block_tokens: int
    usable_blocks: int | None
    l1: L1Config | None = None  # LMCache's L1 behind vLLM (None: no LMCache)


@dataclass(frozen=True)
class CachePrediction:
    per_endpoint: dict[str, TieredPrediction]
    l1_counters: dict[str, dict]
    request_ids: dict[str, np.ndarray]  # per endpoint: the request of each prediction row

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


def _predict_endpoint(reqs: list[PlannedRequest], spec: EngineCacheSpec,
                      times: dict[int, tuple[float, float]]) -> tuple[TieredPrediction, dict]:
    toks = [np.asarray(r.prompt, dtype=np.int64) for r in reqs]
    keys = [chained_keys(t, spec.block_tokens) for t in toks]
    ct = spec.l1.chunk_tokens if spec.l1 else 0
    chunks = [chained_keys(t, ct, full_only=True) for t in toks] if spec.l1 else None
    pool = VllmBlockPool(spec.usable_blocks, spec.block_tokens)
    l1 = LMCacheL1(spec.l1) if spec.l1 else None
    n = len(reqs)
    prompt = np.asarray([len(t) for t in toks], dtype=np.int64)
    local, ext, evictions, l1_hit = (np.zeros(n, dtype=np.int64) for _ in range(4))
    for when, kind, k in _events(reqs, times):
        p = int(prompt[k])
        if kind == 1:  # prefill done: the connector stores the full chunks LMCache lacks
            if l1 is not None:
                l1.store(chunks[k], int(l1_hit[k]), p // ct, when)
            continue
        if kind == 2:  # request ended: LMCache touches its chunks
            if l1 is not None:
                l1.finish(chunks[k], p, when)
            continue
        hit_local = pool.lookup(keys[k], p) * spec.block_tokens
        if l1 is not None:
            l1_hit[k] = l1.lookup(chunks[k], p, when)
            ext[k] = max(0, int(l1_hit[k]) * ct - hit_local)
        out = pool.run_request(keys[k], p, reqs[k].max_tokens)
        local[k] = out.hit_blocks * spec.block_tokens
        evictions[k] = out.evictions
    counters = asdict(l1.counters) if l1 is not None else {}
    return TieredPrediction(prompt, local, ext, evictions), counters


def predict(plan: list[PlannedRequest], sent: set[int], spec: EngineCacheSpec,
            times: dict[int, tuple[float, float]] | None = None) -> CachePrediction:
    """Per endpoint: predicted local / external hit tokens of the sent requests.

    ``times[request] = (lookup_s, store_s, end_s)`` on one clock; by default the planned send
    time for all three.
    """
    times = times or {}
    per, counters, ids = {}, {}, {}
    for ep in sorted({r.endpoint for r in plan}):
        reqs = [r for r in plan if r.endpoint == ep and r.request in sent]
        reqs.sort(key=lambda r: (times.get(r.request, (r.scheduled_s,))[0], r.request))
        per[ep], counters[ep] = _predict_endpoint(reqs, spec, times)
        ids[ep] = np.asarray([r.request for r in reqs], dtype=np.int64)
    return CachePrediction(per, counters, ids)


def combine(preds: dict[str, TieredPrediction]) -> dict:
    """One summary over all endpoints."""
    if not preds:
        return TieredPrediction(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                np.zeros(0, np.int64), np.zeros(0, np.int64)).summary()
    cat = TieredPrediction(*(np.concatenate([getattr(p, f) for p in preds.values()])
                             for f in ("prompt_tokens", "local_hit_tokens",
                                       "external_hit_tokens", "evictions")))
    return cat.summary()
