"""The compiled kernels agree with the slow reference; prefix and TTL semantics by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cache import CacheConfig, simulate
from simkv.cache.engine import capacity_units
from simkv.cache.reference import reference_run
from simkv.cache.stream import build_stream
from simkv.errors import InputError
from simkv.trace.model import Trace
from tests.conftest import random_trace


def _reference(trace, cfg):
    weights, cap = capacity_units(trace, cfg)
    stream = build_stream(trace, weights)
    return reference_run(stream, policy=cfg.policy, capacity=cap,
                         ttl=-1.0 if cfg.ttl_s is None else cfg.ttl_s,
                         from_write=cfg.ttl_mode == "from_write")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), policy=st.sampled_from(["lru", "fifo", "lfu"]),
       cap=st.integers(0, 60), ttl=st.one_of(st.none(), st.floats(1.0, 400.0)),
       mode=st.sampled_from(["refresh_on_hit", "from_write"]))
def test_kernels_match_reference_blocks(seed, policy, cap, ttl, mode):
    trace = random_trace(seed, n_requests=120, duration_s=900)
    cfg = CacheConfig(capacity_blocks=cap, policy=policy, ttl_s=ttl, ttl_mode=mode)
    res = simulate(trace, cfg)
    hit, ev, ex = _reference(trace, cfg)
    assert np.array_equal(res.hit, hit)
    assert np.array_equal(res.records["evictions"].to_numpy(), ev)
    assert np.array_equal(res.records["expirations"].to_numpy(), ex)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), policy=st.sampled_from(["lru", "fifo", "lfu"]),
       cap_blocks=st.integers(0, 40), ttl=st.one_of(st.none(), st.floats(1.0, 400.0)))
def test_kernels_match_reference_bytes_multi_model(seed, policy, cap_blocks, ttl):
    trace = random_trace(seed, n_requests=100, models=("llama-3.1-8b", "deepseek-v3"))
    cfg = CacheConfig(capacity_bytes=cap_blocks * 16 * 100_000, policy=policy, ttl_s=ttl)
    res = simulate(trace, cfg)
    hit, ev, _ = _reference(trace, cfg)
    assert np.array_equal(res.hit, hit)
    assert np.array_equal(res.records["evictions"].to_numpy(), ev)


def _trace(requests, block_tokens=4, times=None):
    """requests: list of (chain, input_tokens)."""
    offsets = np.cumsum([0] + [len(c) for c, _ in requests])
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=times or list(range(len(requests))),
        input_tokens=[n for _, n in requests], output_tokens=[1] * len(requests),
        block_offsets=offsets, block_hashes=[h for c, _ in requests for h in c])


def test_prefix_hit_is_leading_run_and_partial_block():
    t = _trace([([1, 2, 3], 10), ([1, 2, 9], 11), ([1, 2, 3], 10), ([5, 2, 3], 9)])
    r = simulate(t, CacheConfig()).records
    assert r["hit_blocks"].tolist() == [0, 2, 3, 2]
    assert r["prefix_hit_blocks"].tolist() == [0, 2, 3, 0]
    # a fully cached request counts its final partial block by its own tokens
    assert r["prefix_hit_tokens"].tolist() == [0, 8, 10, 0]
    s = simulate(t, CacheConfig()).summary_dict
    assert s["block_hit_ratio"] == pytest.approx(7 / 12)
    assert s["prefix_token_hit_ratio"] == pytest.approx(18 / 40)
    assert s["unique_blocks"] == 5


@pytest.mark.parametrize("gap,hits", [(299.0, 1), (300.0, 0), (301.0, 0)])
def test_ttl_is_strict(gap, hits):
    t = _trace([([1], 4), ([1], 4)], times=[0.0, gap])
    r = simulate(t, CacheConfig(ttl_s=300.0)).records
    assert r["prefix_hit_blocks"].tolist() == [0, hits]


def test_refresh_on_hit_vs_from_write():
    t = _trace([([1], 4), ([1], 4), ([1], 4)], times=[0.0, 200.0, 400.0])
    refresh = simulate(t, CacheConfig(ttl_s=300.0)).records["hit_blocks"].tolist()
    written = simulate(t, CacheConfig(ttl_s=300.0, ttl_mode="from_write")).records["hit_blocks"].tolist()
    assert refresh == [0, 1, 1]
    assert written == [0, 1, 0]


def test_lru_fifo_lfu_differ_as_expected():
    # capacity 2: A B A C A -> LRU keeps A (hit at the end), FIFO evicted A at C
    seq = [[1], [2], [1], [3], [1]]
    t = _trace([(c, 4) for c in seq])
    lru = simulate(t, CacheConfig(capacity_blocks=2, policy="lru")).records["hit_blocks"].tolist()
    fifo = simulate(t, CacheConfig(capacity_blocks=2, policy="fifo")).records["hit_blocks"].tolist()
    assert lru == [0, 0, 1, 0, 1]
    assert fifo == [0, 0, 1, 0, 0]
    # LFU: A(2 hits) survives B(1) even when B is more recent
    seq = [[1], [1], [2], [3], [1]]
    lfu = simulate(_trace([(c, 4) for c in seq]), CacheConfig(capacity_blocks=2, policy="lfu"))
    assert lfu.records["hit_blocks"].tolist() == [0, 1, 0, 0, 1]


def test_capacity_zero_and_oversized_objects():
    t = _trace([([1, 2], 8), ([1, 2], 8)])
    assert simulate(t, CacheConfig(capacity_blocks=0)).summary_dict["block_hit_ratio"] == 0.0
    t2 = t.with_model("llama-3.1-8b")
    one_block = 4 * 131072
    r = simulate(t2, CacheConfig(capacity_bytes=one_block - 1)).summary_dict
    assert r["block_hit_ratio"] == 0.0 and r["evictions"] == 0


def test_model_rules():
    t = random_trace(1, models=("llama-3.1-8b", "qwen3-8b"))
    with pytest.raises(InputError, match="--model is refused"):
        simulate(t, CacheConfig(capacity_blocks=3), model="qwen3-8b")
    bare = random_trace(1)
    with pytest.raises(InputError, match="give --model"):
        simulate(bare, CacheConfig(capacity_bytes=10**9))
    assert simulate(bare, CacheConfig(capacity_bytes=10**9), model="qwen3-8b").summary_dict["requests"] == 200


def test_monotone_in_capacity_and_ttl_on_mooncake(mooncake_trace):
    prev = -1.0
    for cap in (500, 2000, 8000, 30000):
        r = simulate(mooncake_trace, CacheConfig(capacity_blocks=cap)).summary_dict["block_hit_ratio"]
        assert r >= prev
        prev = r
    prev = -1.0
    for ttl in (10.0, 60.0, 300.0, 3600.0):
        r = simulate(mooncake_trace, CacheConfig(ttl_s=ttl)).summary_dict["prefix_token_hit_ratio"]
        assert r >= prev
        prev = r


def test_chunk_reuse_needs_content_hashes(small_trace):
    with pytest.raises(InputError, match="content hashes"):
        simulate(small_trace, CacheConfig(reuse="chunk"))
