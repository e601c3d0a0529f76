"""LMCache's L1 (multi-process server) model, checked by hand against its source's rules."""

import numpy as np
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.cache.lmcache_policy import GIB, L1Config, LMCacheL1, capacity_chunks
from simkv.errors import InputError
from simkv.trace.model import Trace


def _l1(cap, **kw):
    return LMCacheL1(L1Config(cap, 256, **kw))


def test_capacity_in_the_servers_units():
    # 0.01 GiB slab, 256 tokens x 1 KiB per chunk: 10,737,418 // 262,144 = 40 chunks (the
    # engine showed 8 MiB used at usage ratio 0.78125 = 32 / 40.96)
    assert capacity_chunks(int(0.01 * GIB), 256 * 1024) == 40
    cfg = L1Config.from_bytes(int(0.01 * GIB), 256 * 1024)
    assert cfg.capacity_chunks == 40 and cfg.slab_chunks == pytest.approx(40.96, rel=1e-6)


def test_a_store_that_does_not_fit_stores_nothing():
    l1 = _l1(4)
    assert l1.store(["a", "b", "c"], 0, 3, 0.0)
    assert not l1.store(["x", "y"], 0, 2, 0.1)  # 3 + 2 > 4: the whole batch fails
    assert list(l1.order) == ["c", "b", "a"] and l1.counters.failed_stores == 1
    assert l1.store(["x"], 0, 1, 0.2)           # 3 + 1 fits


def test_eviction_only_on_the_loop_tick_above_the_watermark():
    # capacity 10, watermark 0.8: a wake with >= 8 chunks evicts int(0.2 x 8) = 1 chunk
    l1 = _l1(10, tick_phase_s=0.0)
    keys = [f"k{i}" for i in range(8)]
    l1.store(keys, 0, 8, 0.5)       # first event: wakes before it are not seen; 8 stored
    assert len(l1.order) == 8 and l1.counters.evicted_chunks == 0
    assert l1.lookup(keys, 8 * 256, 0.9) == 8
    l1.advance(1.0)                  # wake at 1.0: usage 0.8 >= 0.8 -> evict int(1.6) = 1
    assert l1.counters.triggered == 1 and l1.counters.evicted_chunks == 1
    # reverse insertion: the request's *last* chunk was least recent, so it went first
    assert "k7" not in l1.order and l1.lookup(keys, 8 * 256, 1.1) == 7
    l1.advance(2.0)                  # 7 / 10 < 0.8: the wake does nothing
    assert l1.counters.ticks == 2 and l1.counters.triggered == 1  # wakes at 1.0 and 2.0


def test_watermark_counts_the_slab_not_the_whole_chunks():
    # a 40.96-chunk slab: 32 chunks are 0.78 < 0.8 (no eviction), 33 are 0.806 (eviction)
    cfg = L1Config.from_bytes(int(0.01 * GIB), 256 * 1024)
    l1 = LMCacheL1(cfg)
    l1.store([f"a{i}" for i in range(32)], 0, 32, 0.5)
    l1.advance(1.0)
    assert l1.counters.triggered == 0
    l1.store(["b"], 0, 1, 1.5)
    l1.advance(2.0)
    assert l1.counters.triggered == 1 and l1.counters.evicted_chunks == int(33 * 0.2)


def test_finish_and_lookup_make_chunks_most_recent():
    l1 = _l1(None)
    l1.store(["a1", "a2"], 0, 2, 0.0)
    l1.store(["b1"], 0, 1, 0.0)
    assert list(l1.order) == ["a2", "a1", "b1"]
    # the prefetch touches its hit (both chunks), reverse order: a1 ends most recent
    assert l1.lookup(["a1", "a2"], 512, 0.1) == 2
    assert list(l1.order) == ["b1", "a2", "a1"]
    # only the leading run is a hit and only it is touched (x is not stored, a1 after it not)
    assert l1.lookup(["b1", "x", "a1"], 768, 0.15) == 1
    assert list(l1.order) == ["a2", "a1", "b1"]
    l1.finish(["a1", "a2"], 512, 0.2)
    assert list(l1.order) == ["b1", "a2", "a1"]


def test_a_lookups_hit_outlives_a_wake_before_its_request_ends():
    """Request A stores a1-a4 (order a4 a3 a2 a1, LRU first), B stores b1-b4 after it; C looks
    up a1 a2 at 0.5 s and hits both, which moves them to the most recent end: a4 a3 b4 b3 b2 b1
    a2 a1.  The wake at 1.0 s sees 8 of 10 (>= 0.8) and deletes int(0.5 x 8) = 4 keys from the
    LRU end: a4 a3 b4 b3.  Without the lookup's touch it would delete a4 a3 a2 a1, C's hit."""
    l1 = _l1(10, eviction_ratio=0.5, tick_phase_s=0.0)
    l1.store(["a1", "a2", "a3", "a4"], 0, 4, 0.0)
    l1.store(["b1", "b2", "b3", "b4"], 0, 4, 0.1)
    assert l1.lookup(["a1", "a2", "c3"], 768, 0.5) == 2
    l1.advance(1.0)
    assert l1.counters.evicted_chunks == 4
    assert list(l1.order) == ["b2", "b1", "a2", "a1"]
    assert l1.lookup(["a1", "a2"], 512, 1.1) == 2


def test_watched_wakes_replace_the_nominal_loop():
    l1 = _l1(2, wakes_s=(0.3, 0.35))
    l1.store(["a", "b"], 0, 2, 0.0)
    l1.advance(0.34)
    assert l1.counters.ticks == 1 and l1.counters.evicted_chunks == 1  # 2/2 >= 0.8 -> int(0.4) -> 1
    l1.advance(10.0)
    assert l1.counters.ticks == 2  # no further wakes were seen


def test_registered_policy_runs_through_the_engine():
    # two requests sharing 2 of 3 chunks, one second apart, capacity 3 chunks
    trace = Trace.from_arrays(block_tokens=256, arrival_s=[0.0, 1.5], input_tokens=[768, 768],
                              output_tokens=[1, 1], block_offsets=[0, 3, 6],
                              block_hashes=np.array([1, 2, 3, 1, 2, 4], dtype=np.uint64))
    res = simulate(trace, CacheConfig(capacity_blocks=3, policy="lmcache"))
    # request 1: the wake at 1.0 saw 3/3 >= 0.8 and evicted int(0.6) -> 1 chunk, the least
    # recent = request 0's last chunk (3); chunks 1, 2 still hit; storing 4 fits again
    assert res.records["prefix_hit_tokens"].tolist() == [0, 512]
    assert res.records["evictions"].tolist() == [0, 1]


def test_the_policy_takes_capacity_in_chunks_only():
    trace = Trace.from_arrays(block_tokens=256, arrival_s=[0.0], input_tokens=[256],
                              output_tokens=[1], block_offsets=[0, 1],
                              block_hashes=np.array([1], dtype=np.uint64))
    with pytest.raises(InputError):
        simulate(trace, CacheConfig(capacity_blocks=3, policy="lmcache", ttl_s=5.0))


def test_the_policy_takes_the_servers_bytes_too():
    """tiny-llama-2l: 1 KiB per token, 256-token chunks = 256 KiB; 0.01 GiB -> 40 chunks, and
    the watermark counts the 40.96-chunk slab: 33 chunks stored evict at the next wake."""
    n = 34
    arrival = np.r_[np.arange(n - 1) * 0.01 + 0.5, 1.5]
    trace = Trace.from_arrays(block_tokens=256, arrival_s=arrival, input_tokens=[256] * n,
                              output_tokens=[1] * n, block_offsets=np.arange(n + 1),
                              block_hashes=np.arange(1, n + 1, dtype=np.uint64),
                              models=("tiny-llama-2l",), model_index=np.zeros(n, dtype=np.int16))
    res = simulate(trace, CacheConfig(capacity_bytes=int(0.01 * GIB), policy="lmcache"))
    # 33 distinct chunks by 0.82 s; the wake at 1.0 s sees 33 / 40.96 >= 0.8 and evicts
    # int(0.2 x 33) = 6 before the last request (1.5 s)
    assert res.records["evictions"].tolist() == [0] * 33 + [6]
