"""Storage levels: reduce to the single-cache engine where theory says they must."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.errors import InputError
from simkv.models import get_model
from simkv.sizing.hierarchy import simulate_levels
from simkv.sizing.levels import Hierarchy, StorageLevel, default_levels
from simkv.trace.rechunk import rechunk
from tests.conftest import random_trace

MODEL = "llama-3.1-8b"


def level(name, blocks, chunk=16, **kw) -> StorageLevel:
    cap = None if blocks is None else blocks * get_model(MODEL).block_bytes(chunk)
    return StorageLevel(name, cap, chunk, 1e10, 1e10, **kw)


def full_blocks(trace):
    """The same trace with every prompt a whole number of blocks (equal chunk sizes)."""
    n = np.diff(trace.block_offsets) * trace.block_tokens
    return replace(trace, input_tokens=n.astype(np.int64))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("blocks, ttl", [(10, None), (40, None), (25, 30.0), (None, 20.0)])
def test_one_level_equals_engine(seed, blocks, ttl):
    trace = random_trace(seed).with_model(MODEL)
    h = Hierarchy((level("hbm", blocks, ttl_s=ttl),))
    res = simulate_levels(trace, h)
    cap = None if blocks is None else blocks * get_model(MODEL).block_bytes(16)
    eng = simulate(trace, CacheConfig(capacity_bytes=cap, ttl_s=ttl))
    assert np.array_equal(res.records.hit_tokens, eng.records.prefix_hit_tokens)
    assert np.array_equal(res.records.served_tokens_hbm, eng.records.prefix_hit_tokens)


@pytest.mark.parametrize("seed", [0, 3])
def test_inclusive_unlimited_lower_level(seed):
    """HBM behaves as alone (nothing is pushed into it that it would not hold anyway); an
    unlimited level below serves every reuse."""
    trace = random_trace(seed).with_model(MODEL)
    h = Hierarchy((level("hbm", 12), level("dram", None)))
    res = simulate_levels(trace, h)
    alone = simulate(trace, CacheConfig(capacity_bytes=12 * get_model(MODEL).block_bytes(16)))
    unlimited = simulate(trace, CacheConfig())
    # HBM holds what it would alone: it inserts exactly the blocks the engine misses ...
    misses = (alone.records.blocks - alone.records.hit_blocks).to_numpy()
    assert np.array_equal(res.records.written_bytes_hbm, misses * get_model(MODEL).block_bytes(16))
    # ... and serves at least the engine's leading run (DRAM can fill gaps before later HBM chunks)
    assert (res.records.served_tokens_hbm >= alone.records.prefix_hit_tokens).all()
    assert np.array_equal(res.records.hit_tokens, unlimited.records.prefix_hit_tokens)
    assert res.summary["served_tokens_dram"] > 0
    assert (res.records.read_bytes_dram == np.round(
        res.records.served_tokens_dram * get_model(MODEL).kv_bytes_per_token)).all()


@pytest.mark.parametrize("seed", [0, 1, 4])
@pytest.mark.parametrize("c0, c1", [(5, 10), (12, 30), (1, 7)])
def test_exclusive_promote_demote_is_one_lru_of_the_sum(seed, c0, c1):
    """Exclusive levels with promotion on hit and demotion on eviction keep one global LRU
    order, so they hit exactly like a single LRU of the summed capacity."""
    trace = full_blocks(random_trace(seed)).with_model(MODEL)
    h = Hierarchy((level("hbm", c0), level("dram", c1)), placement="exclusive")
    res = simulate_levels(trace, h)
    one = simulate(trace, CacheConfig(capacity_bytes=(c0 + c1) * get_model(MODEL).block_bytes(16)))
    assert np.array_equal(res.records.hit_tokens, one.records.prefix_hit_tokens)
    assert res.summary["demoted_bytes"] > 0 and res.summary["promoted_bytes"] > 0


def test_exclusive_without_demotion_is_hbm_alone():
    trace = full_blocks(random_trace(5)).with_model(MODEL)
    h = Hierarchy((level("hbm", 8), level("dram", 50)), placement="exclusive",
                  demote_on_evict=False)
    res = simulate_levels(trace, h)
    alone = simulate(trace, CacheConfig(capacity_bytes=8 * get_model(MODEL).block_bytes(16)))
    assert np.array_equal(res.records.hit_tokens, alone.records.prefix_hit_tokens)
    assert res.summary["written_bytes_dram"] == 0


def test_coarser_level_chunks_equal_engine_on_rechunked_trace():
    trace = random_trace(6).with_model(MODEL)
    h = Hierarchy((level("hbm", 0), level("dram", None, chunk=64)))
    res = simulate_levels(trace, h)
    coarse = simulate(rechunk(trace, 64), CacheConfig())
    assert np.array_equal(res.records.served_tokens_dram, coarse.records.prefix_hit_tokens)
    assert res.summary["served_tokens_hbm"] == 0


def test_partial_chunks_not_stored_when_disabled():
    trace = random_trace(6).with_model(MODEL)
    h = Hierarchy((level("hbm", 0), level("dram", None, chunk=64, store_partial=False)))
    res = simulate_levels(trace, h)
    assert (res.records.served_tokens_dram % 64 == 0).all()
    full = simulate_levels(trace, Hierarchy((level("hbm", 0), level("dram", None, chunk=64))))
    assert res.summary["hit_tokens"] < full.summary["hit_tokens"]


def test_second_access_admission():
    trace = random_trace(2).with_model(MODEL)
    h = Hierarchy((level("hbm", 3), level("dram", None)), admission="second_access")
    res = simulate_levels(trace, h)
    _, counts = np.unique(trace.block_hashes, return_counts=True)
    # the unlimited level writes each chunk once, at its second access (or on demotion after)
    assert res.summary["written_bytes_dram"] == int((counts >= 2).sum()) * \
        get_model(MODEL).block_bytes(16)
    everything = simulate_levels(trace, replace(h, admission="all"))
    assert everything.summary["written_bytes_dram"] == len(counts) * get_model(MODEL).block_bytes(16)


def test_promotion_copies_up_in_inclusive_mode():
    trace = random_trace(0).with_model(MODEL)
    levels = (level("hbm", 2), level("dram", 6), level("bucket", None))
    on = simulate_levels(trace, Hierarchy(levels))
    off = simulate_levels(trace, Hierarchy(levels, promote_on_hit=False))
    # HBM always takes what it loads; without promotion DRAM no longer copies bucket hits
    assert 0 < off.summary["promoted_bytes"] < on.summary["promoted_bytes"]
    assert off.summary["written_bytes_dram"] < on.summary["written_bytes_dram"]
    assert on.summary["hit_tokens"] == off.summary["hit_tokens"]  # the bucket holds everything


def test_records_and_load_time():
    trace = random_trace(1).with_model(MODEL)
    res = simulate_levels(trace, Hierarchy(default_levels(hbm_bytes=10 * 2**20, dram_bytes=40 * 2**20,
                                                          chunk_tokens=64)))
    r = res.records
    served = sum(r[f"served_tokens_{n}"] for n in ("hbm", "dram", "nvme", "bucket"))
    assert (served == r.hit_tokens).all()
    assert (r.hit_tokens + r.missed_tokens == r.input_tokens).all()
    assert (r.load_s[r.served_tokens_bucket > 0] >= 5e-3).all()
    assert res.summary["approximate_levels"] == []


def test_bad_hierarchies():
    with pytest.raises(InputError, match="same chunk_tokens"):
        Hierarchy((level("a", 1, chunk=16), level("b", 1, chunk=32)), placement="exclusive")
    with pytest.raises(InputError, match="unique"):
        Hierarchy((level("a", 1), level("a", 1)))
    with pytest.raises(InputError, match="admission"):
        Hierarchy((level("a", 1),), admission="sometimes")
    with pytest.raises(InputError, match="model"):
        simulate_levels(random_trace(0), Hierarchy((level("a", 1),)))
    with pytest.raises(InputError, match="multiple nor a divisor"):
        simulate_levels(random_trace(0).with_model(MODEL), Hierarchy((level("a", 1, chunk=24),)))


# ------------------------------------------------------------------ invariants, random configs

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from simkv.sizing.lifecycle import Event  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), caps=st.lists(st.one_of(st.none(), st.integers(0, 30)),
                                                   min_size=1, max_size=3),
       chunk_mult=st.lists(st.sampled_from([1, 2, 4]), min_size=3, max_size=3),
       exclusive=st.booleans(), promote=st.booleans(), demote=st.booleans(),
       second=st.booleans(), ttl=st.one_of(st.none(), st.sampled_from([20.0, 100.0])),
       quota=st.one_of(st.none(), st.integers(0, 10)),
       events=st.lists(st.tuples(st.floats(0, 600), st.sampled_from(
           ["replica_restart", "reset", "template_change", "tier_upgrade", "model_upgrade"])),
           max_size=4))
def test_hierarchy_invariants(seed, caps, chunk_mult, exclusive, promote, demote, second, ttl,
                              quota, events):
    models = (MODEL, "qwen3-8b")
    trace = random_trace(seed, n_requests=60, models=models)
    chunks = [16] * len(caps) if exclusive else [16 * c for c in chunk_mult[:len(caps)]]
    levels = []
    for i, (c, ch) in enumerate(zip(caps, chunks, strict=True)):
        q = () if quota is None or i != len(caps) - 1 else ((MODEL, quota * get_model(MODEL).block_bytes(ch)),)
        levels.append(StorageLevel(f"l{i}", None if c is None else c * get_model(MODEL).block_bytes(ch),
                                   ch, 1e10, 1e10, ttl_s=ttl if i == 0 else None,
                                   persistent=i == len(caps) - 1, quotas_bytes=q))
    h = Hierarchy(tuple(levels), placement="exclusive" if exclusive else "inclusive",
                  promote_on_hit=promote, demote_on_evict=demote,
                  admission="second_access" if second else "all")
    evs = []
    for t, kind in events:
        params = {"tier_upgrade": {"capacity_bytes": 5 * 2**30}, "model_upgrade": {"model": MODEL},
                  "template_change": {}}.get(kind, {})
        evs.append(Event(t, kind, params))
    res = simulate_levels(trace, h, events=evs, sample_interval_s=10.0)
    r = res.records
    served = sum(r[f"served_tokens_l{i}"] for i in range(len(caps)))
    assert (served == r.hit_tokens).all()
    assert (r.hit_tokens + r.missed_tokens == r.input_tokens).all()
    assert (r.hit_tokens >= 0).all()
    tl = res.timeline
    bounded = tl[tl.capacity_bytes.notna()]
    assert (bounded.used_bytes <= bounded.capacity_bytes).all()
    assert (tl.stale_bytes <= tl.used_bytes).all() and (tl.stale_bytes >= 0).all()
    by = res.bytes_by_model.groupby(["sample", "level"]).bytes.sum()
    for row in tl.itertuples():
        assert by.get((row.sample, row.level), 0) == row.used_bytes
    if quota is not None:
        last = f"l{len(caps) - 1}"
        qb = res.bytes_by_model[(res.bytes_by_model.level == last) & (res.bytes_by_model.model == MODEL)]
        assert (qb.bytes <= quota * get_model(MODEL).block_bytes(chunks[-1])).all()
    # a hierarchy can never beat an unlimited cache of the same chunks
    unlimited = simulate_levels(trace, Hierarchy((StorageLevel("all", None, 16, 1e10, 1e10),)),
                                events=[e for e in evs if e.kind in ("template_change", "model_upgrade")])
    assert (r.hit_tokens <= unlimited.records.hit_tokens).all()
