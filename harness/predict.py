"""simkv's prediction for the requests a replay actually sent, by the engine's own rules.

The token sequences sent are hashed at the engine's block size (read from its metrics) and at
LMCache's chunk size, and run through :func:`simkv.cache.vllm_policy.simulate_tiers` with the
engine's real number of blocks, per endpoint (the same routing as the replay), in send order.
Requests skipped as too long are left out of both the measured and the predicted figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.plan import PlannedRequest
from harness.prompts import chained_keys
from simkv.cache.vllm_policy import TieredPrediction, simulate_tiers


@dataclass(frozen=True)
class EngineCacheSpec:
    block_tokens: int
    usable_blocks: int | None
    lmcache: bool = False
    lmcache_chunk_tokens: int = 256
    lmcache_chunks: int | None = None


def predict(plan: list[PlannedRequest], sent: set[int], spec: EngineCacheSpec,
            *, warmup: list[PlannedRequest] = ()) -> dict[str, TieredPrediction]:
    """Per endpoint: predicted local / external hit tokens of the sent requests, send order."""
    out: dict[str, TieredPrediction] = {}
    endpoints = sorted({r.endpoint for r in plan})
    for ep in endpoints:
        reqs = [r for r in plan if r.endpoint == ep and r.request in sent]
        reqs.sort(key=lambda r: (r.scheduled_s, r.request))
        toks = [np.asarray(r.prompt, dtype=np.int64) for r in reqs]
        keys = [chained_keys(t, spec.block_tokens) for t in toks]
        chunks = ([chained_keys(t, spec.lmcache_chunk_tokens, full_only=True) for t in toks]
                  if spec.lmcache else None)
        out[ep] = simulate_tiers(
            keys, [len(t) for t in toks], [r.max_tokens for r in reqs],
            num_blocks=spec.usable_blocks, block_tokens=spec.block_tokens, chunk_keys=chunks,
            lmcache_chunks=spec.lmcache_chunks, chunk_tokens=spec.lmcache_chunk_tokens)
    return out


def combine(preds: dict[str, TieredPrediction]) -> dict:
    """One summary over all endpoints."""
    if not preds:
        return TieredPrediction(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                np.zeros(0, np.int64), np.zeros(0, np.int64)).summary()
    cat = TieredPrediction(*(np.concatenate([getattr(p, f) for p in preds.values()])
                             for f in ("prompt_tokens", "local_hit_tokens",
                                       "external_hit_tokens", "evictions")))
    return cat.summary()
