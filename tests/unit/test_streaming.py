"""The streaming path gives bit-identical results for any chunk size (1, 7, 4096, whole).

Every chunked run is compared with the whole trace as one chunk and, for the kernels, with the
slow reference twin (``simkv.cache.reference``) on the whole trace, an independent oracle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cache import CacheConfig, simulate
from simkv.cache.engine import capacity_units, simulate_stream
from simkv.cache.reference import reference_run
from simkv.cache.stream import build_stream
from simkv.errors import InputError
from simkv.idmap import IdMap
from simkv.sizing.grid import lru_grid
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

CHUNKS = (1, 7, 4096, None)


def _with_content(trace: Trace) -> Trace:
    """Content hashes that repeat across different chains (so chunk reuse has work to do)."""
    return Trace.from_arrays(
        block_tokens=trace.block_tokens, arrival_s=trace.arrival_s,
        input_tokens=trace.input_tokens, output_tokens=trace.output_tokens,
        block_offsets=trace.block_offsets, block_hashes=trace.block_hashes,
        session_ids=trace.session_ids, model_index=trace.model_index, models=trace.models,
        content_hashes=(trace.block_hashes % np.uint64(23)) + np.uint64(1000))


def _same(a, b) -> None:
    assert a.summary_dict == b.summary_dict
    assert np.array_equal(a.hit, b.hit)
    pd.testing.assert_frame_equal(a.records, b.records, check_exact=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), policy=st.sampled_from(["lru", "fifo", "lfu"]),
       cap=st.integers(0, 60), ttl=st.one_of(st.none(), st.floats(1.0, 400.0)),
       mode=st.sampled_from(["refresh_on_hit", "from_write"]),
       reuse=st.sampled_from(["prefix", "chunk"]))
def test_simulate_chunked_equals_whole(seed, policy, cap, ttl, mode, reuse):
    trace = _with_content(random_trace(seed, n_requests=150, duration_s=900))
    cfg = CacheConfig(capacity_blocks=cap, policy=policy, ttl_s=ttl, ttl_mode=mode, reuse=reuse,
                      blend_recompute_share=0.25 if reuse == "chunk" else 0.0)
    whole = simulate(trace, cfg)
    for n in CHUNKS:
        _same(simulate_stream(TraceSource(trace=trace), cfg, chunk_requests=n), whole)
    if reuse == "prefix":  # and the whole against the independent reference twin
        weights, capacity = capacity_units(trace, cfg)
        hit, ev, ex = reference_run(build_stream(trace, weights), policy=policy,
                                    capacity=capacity, ttl=-1.0 if ttl is None else ttl,
                                    from_write=mode == "from_write")
        chunked = simulate_stream(TraceSource(trace=trace), cfg, chunk_requests=7)
        assert np.array_equal(chunked.hit, hit)
        assert np.array_equal(chunked.records["evictions"].to_numpy(), ev)
        assert np.array_equal(chunked.records["expirations"].to_numpy(), ex)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000), policy=st.sampled_from(["lru", "fifo", "lfu", "vllm"]),
       cap_blocks=st.integers(0, 40))
def test_simulate_chunked_bytes_multi_model(seed, policy, cap_blocks):
    models = ("llama-3.1-8b",) if policy == "vllm" else ("llama-3.1-8b", "deepseek-v3")
    trace = random_trace(seed, n_requests=100, models=models)
    cfg = CacheConfig(capacity_bytes=cap_blocks * 16 * 100_000, policy=policy)
    whole = simulate(trace, cfg)
    for n in CHUNKS:
        _same(simulate_stream(TraceSource(trace=trace), cfg, chunk_requests=n), whole)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 100_000), models=st.sampled_from([(), ("llama-3.1-8b", "deepseek-v3")]),
       rate=st.sampled_from([None, 0.5]))
def test_grid_chunked_equals_whole_and_engine(seed, models, rate):
    trace = random_trace(seed, n_requests=120, models=models, duration_s=900)
    if models:
        kw = dict(capacities_bytes=[0, 5 * 1_600_000, 30 * 1_600_000, None])
    else:
        kw = dict(capacities_blocks=[0, 3, 10, 40, None])
    ttls = [30.0, 200.0, None]
    whole = lru_grid(trace, ttls_s=ttls, sample_rate=rate, **kw)
    for n in CHUNKS:
        got = lru_grid(TraceSource(trace=trace), ttls_s=ttls, chunk_requests=n, sample_rate=rate,
                       executor="local", **kw)
        pd.testing.assert_frame_equal(got, whole, check_exact=True)
    if rate is None and not models:  # exact: each point equals the engine's own simulation
        for row in whole.itertuples():
            cap = None if pd.isna(row.capacity_blocks) else int(row.capacity_blocks)
            ttl = None if pd.isna(row.ttl_s) else float(row.ttl_s)
            res = simulate(trace, CacheConfig(capacity_blocks=cap, ttl_s=ttl))
            assert row.hit_blocks == int(res.hit.sum())
            assert row.prefix_hit_tokens == res.summary_dict["prefix_hit_tokens"]


def test_grid_position_window_compacts():
    """Many more accesses than objects: the position window (2 x objects) is compacted many
    times mid-chunk, and every point still equals the engine's LRU."""
    rng = np.random.default_rng(np.random.SeedSequence(3))
    n_req = 3000
    hashes = rng.integers(1, 60, size=n_req * 4).astype(np.uint64)
    trace = Trace.from_arrays(block_tokens=16, arrival_s=np.arange(n_req, dtype=float),
                              input_tokens=np.full(n_req, 64), output_tokens=np.ones(n_req),
                              block_offsets=np.arange(n_req + 1) * 4, block_hashes=hashes)
    grid = lru_grid(TraceSource(trace=trace), capacities_blocks=[5, 20, 59], ttls_s=[50.0, None],
                    chunk_requests=1000)
    for row in grid.itertuples():
        ttl = None if pd.isna(row.ttl_s) else float(row.ttl_s)
        res = simulate(trace, CacheConfig(capacity_blocks=int(row.capacity_blocks), ttl_s=ttl))
        assert row.hit_blocks == int(res.hit.sum())


@pytest.mark.parametrize("n", CHUNKS)
def test_mooncake_file_stream(mooncake_path, mooncake_trace, tmp_path, n):
    """The shipped Mooncake trace read from its JSONL file and from a v2 Parquet file in
    chunks of ``n`` requests gives the in-memory results."""
    from simkv.trace import save_trace

    pq_path = tmp_path / "m.parquet"
    save_trace(mooncake_trace, pq_path)
    cfg = CacheConfig(capacity_blocks=2000, ttl_s=600.0)
    whole = simulate(mooncake_trace, cfg)
    for path in (mooncake_path, pq_path):
        _same(simulate_stream(TraceSource.of(path), cfg, chunk_requests=n), whole)
    caps, ttls = [500, 2000, None], [60.0, 600.0, None]
    ref = lru_grid(mooncake_trace, capacities_blocks=caps, ttls_s=ttls)
    got = lru_grid(TraceSource.of(pq_path), capacities_blocks=caps, ttls_s=ttls, chunk_requests=n)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def test_idmap_first_appearance_and_growth():
    rng = np.random.default_rng(np.random.SeedSequence(11))
    keys = rng.integers(0, 50_000, size=200_000).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    # the independent answer: ids in order of first appearance, from numpy's unique
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    expected = rank[inverse]
    m = IdMap()
    got = np.concatenate([m.map(keys[a:a + 777]) for a in range(0, len(keys), 777)])
    assert np.array_equal(got, expected)
    assert m.n_ids == len(first)
    assert m.slots < 4 * len(first) / 0.6 + 1024  # sized by unique keys, not by accesses


def test_chunk_size_must_be_positive():
    trace = random_trace(1)
    for bad in (0, -3):
        with pytest.raises(InputError, match="--chunk-requests"):
            simulate_stream(TraceSource(trace=trace), chunk_requests=bad)


def _write_v1(trace: Trace, path) -> None:
    """A schema v1 file (list columns of hashes), as simkv wrote before v2."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    off = trace.block_offsets.astype(np.int32)
    cols = {
        "arrival_s": pa.array(trace.arrival_s), "session_id": pa.array(trace.session_ids),
        "tenant_id": pa.array(trace.tenant_ids), "model_index": pa.array(trace.model_index),
        "input_tokens": pa.array(trace.input_tokens), "output_tokens": pa.array(trace.output_tokens),
        "hash_ids": pa.ListArray.from_arrays(pa.array(off), pa.array(trace.block_hashes)),
    }
    if trace.content_hashes is not None:
        cols["content_hashes"] = pa.ListArray.from_arrays(pa.array(off),
                                                          pa.array(trace.content_hashes))
    meta = {b"simkv.schema_version": b"1", b"simkv.block_tokens": str(trace.block_tokens).encode(),
            b"simkv.models": json.dumps(list(trace.models)).encode(), b"simkv.meta": b"{}"}
    table = pa.table(cols).replace_schema_metadata(meta)
    pq.write_table(table, path, row_group_size=37)


@pytest.mark.parametrize("n", CHUNKS)
def test_schema_v1_still_reads_and_streams(tmp_path, n):
    from simkv.trace import load_trace

    trace = _with_content(random_trace(5, n_requests=300, models=("llama-3.1-8b",)))
    v1 = tmp_path / "v1.parquet"
    _write_v1(trace, v1)
    back = load_trace(v1)
    assert np.array_equal(back.block_hashes, trace.block_hashes)
    assert np.array_equal(back.content_hashes, trace.content_hashes)
    assert np.array_equal(back.block_offsets, trace.block_offsets)
    cfg = CacheConfig(capacity_blocks=25, ttl_s=120.0, reuse="chunk")
    _same(simulate_stream(TraceSource.of(v1), cfg, chunk_requests=n), simulate(trace, cfg))


def test_v2_carries_dense_ids_equal_to_the_id_map(tmp_path, mooncake_trace):
    """A v2 file's stored ids are the id map's first-appearance ids, chunk after chunk."""
    from simkv.trace import save_trace
    from simkv.trace.derived import stream_ids

    path = tmp_path / "m.parquet"
    save_trace(mooncake_trace, path)
    m = IdMap()
    for chunk in TraceSource.of(path).chunks(333):
        ids, before, after = stream_ids(chunk)
        assert before == m.n_ids
        assert np.array_equal(ids, m.map(chunk.block_hashes))
        assert after == m.n_ids
