"""The engine-faithful vllm policy: hand-worked cases from vLLM's block pool rules."""

from __future__ import annotations

import numpy as np
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.cache.vllm_policy import LMCacheLRU, VllmBlockPool, simulate_tiers
from simkv.errors import InputError
from simkv.trace.model import Trace


def keys(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]


def test_repeated_prompt_hits_full_blocks_only():
    pool = VllmBlockPool(64, 128)
    k = keys("a", 16)  # 2000 tokens: 15 full blocks + 80 tokens
    assert pool.run_request(k, 2000, 4).hit_blocks == 0
    assert pool.run_request(k, 2000, 4).hit_blocks == 15  # 1,920 tokens, as vLLM reports


def test_fully_cached_prompt_recomputes_its_last_block():
    pool = VllmBlockPool(64, 128)
    k = keys("b", 4)  # 512 tokens, a multiple of the block size
    pool.run_request(k, 512, 1)
    out = pool.run_request(k, 512, 1)
    assert out.hit_blocks == 3  # max hit = num_tokens - 1 -> 3 blocks
    assert len(pool.cached["b3"]) == 2  # recomputed block cached again: a duplicate


def test_generated_tokens_fill_and_cache_blocks():
    pool = VllmBlockPool(64, 128)
    out = pool.run_request(keys("c", 2), 200, 100)  # 299 tokens held -> 3 blocks
    assert out.allocated_blocks == 3
    assert len(pool.block_key) == 2  # block 0 (prompt) and block 1 (filled by output)
    assert "c1" not in pool.cached  # the prompt's partial block is never its hash


def test_tail_blocks_are_evicted_first_and_partial_blocks_reused_first():
    pool = VllmBlockPool(4, 10)
    pool.run_request(keys("x", 3), 25, 1)  # x0, x1 cached; the partial third block uncached
    # free queue now: [partial, free, x1, x0]  (prepend uncached, append cached tail-first)
    order = list(pool.free)
    assert [pool.block_key.get(b) for b in order] == [None, None, "x1", "x0"]
    out = pool.run_request(keys("y", 3), 30, 1)  # needs 3 blocks: partial, free, then x1
    assert out.evictions == 1
    assert "x0" in pool.cached and "x1" not in pool.cached
    assert pool.lookup(keys("x", 3), 25) == 1


def test_hit_blocks_are_pinned_not_evicted_by_their_own_request():
    pool = VllmBlockPool(3, 10)
    pool.run_request(keys("p", 2), 20, 1)  # p0 p1 cached (2 blocks) -> 1 free
    out = pool.run_request(keys("p", 2) + ["q2"], 25, 1)  # hits 2, needs 1 more: the free one
    assert out.hit_blocks == 2 and out.evictions == 0


def test_policy_registered_and_matches_pool():
    chains = [[1, 2, 3], [1, 2, 4], [5, 6], [1, 2, 3]]
    inp = [30, 25, 20, 30]
    offsets = np.cumsum([0] + [len(c) for c in chains])
    trace = Trace.from_arrays(block_tokens=10, arrival_s=np.arange(4.0), input_tokens=inp,
                              output_tokens=[1, 1, 1, 1], block_offsets=offsets,
                              block_hashes=np.concatenate(chains).astype(np.uint64))
    res = simulate(trace, CacheConfig(capacity_blocks=100, policy="vllm"))
    # req1 shares 2 blocks; req3 repeats req0 (30 tokens = 3 full blocks, max hit 29 -> 2)
    assert res.records["prefix_hit_tokens"].tolist() == [0, 20, 0, 20]
    lru = simulate(trace, CacheConfig(capacity_blocks=100, policy="lru"))
    assert lru.records["prefix_hit_tokens"].tolist()[3] == 30  # plain LRU over-counts
    with pytest.raises(InputError):
        simulate(trace, CacheConfig(capacity_blocks=10, policy="vllm", ttl_s=5))


def test_lmcache_level_external_hits():
    # vLLM holds 2 blocks of 128; LMCache keeps 256-token chunks: after vLLM evicts, LMCache serves
    a = keys("a", 5)   # 600 tokens
    b = keys("b", 5)
    ca, cb = keys("A", 2), keys("B", 2)
    pred = simulate_tiers([a, b, a], [600, 600, 600], [1, 1, 1], num_blocks=5, block_tokens=128,
                          chunk_keys=[ca, cb, ca], lmcache_chunks=None)
    assert pred.local_hit_tokens.tolist() == [0, 0, 0]
    assert pred.external_hit_tokens.tolist() == [0, 0, 512]
    small = LMCacheLRU(1)
    small.store(ca, 0, 2)
    assert small.lookup(ca, 600) == 0 and small.evictions == 1
