"""``--store-shards K``: K store nodes, each fed only its blocks, recombined per request.

Three independent answers must agree on random traces (hypothesis): the partition path
(``simulate_store_shards``: one task per shard reading its own dataset), K separate in-process
``simkv.cache.simulate`` runs on hand-built per-node traces, and a slow plain-Python sharded
store written here from the definition.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.cache import CacheConfig, simulate
from simkv.errors import InputError
from simkv.sizing.storeshards import node_capacity, node_config, simulate_store_shards
from simkv.trace import save_trace
from simkv.trace.model import Trace
from simkv.trace.partition import partition_trace
from simkv.trace.shardlayout import shard_of
from tests.conftest import random_trace

COLUMNS = ("hit_blocks", "prefix_hit_blocks", "prefix_hit_tokens", "evictions")


def reference_store(trace: Trace, shards: int, capacity: int | None, ttl: float | None,
                    lru: bool, from_write: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per request (hit blocks, leading-run blocks) of K LRU/FIFO nodes of unit-size blocks.

    Node k's capacity is ``capacity // K`` plus one for the first ``capacity % K`` nodes.  At
    each request, a node the request touches first drops entries whose stamp is ``ttl`` old
    or older, then takes the request's blocks that live on it, in chain order."""
    node = shard_of(trace.block_hashes, shards)
    caches = [OrderedDict() for _ in range(shards)]
    caps = [None if capacity is None else capacity // shards + (k < capacity % shards)
            for k in range(shards)]
    hits = np.zeros(trace.n_requests, dtype=np.int64)
    lead = np.zeros(trace.n_requests, dtype=np.int64)
    for r in range(trace.n_requests):
        t = trace.arrival_s[r]
        a, b = trace.block_offsets[r], trace.block_offsets[r + 1]
        touched = set(node[a:b].tolist())
        for k in touched:
            if ttl is not None:
                for key in [key for key, stamp in caches[k].items() if t - stamp >= ttl]:
                    del caches[k][key]
        run = True
        for j in range(a, b):
            c, key, cap = caches[node[j]], int(trace.block_hashes[j]), caps[node[j]]
            if key in c:
                hits[r] += 1
                lead[r] += run
                if lru:
                    c.move_to_end(key)
                if not from_write:
                    c[key] = t
                continue
            run = False
            if cap is not None and cap < 1:
                continue
            while cap is not None and len(c) >= cap:
                c.popitem(last=False)
            c[key] = t
    return hits, lead


def separate_runs(trace: Trace, shards: int, cfg: CacheConfig, model: str | None = None):
    """K ordinary ``simulate`` runs, node k on a trace of only its blocks, recombined here."""
    node = shard_of(trace.block_hashes, shards)
    req = trace.request_of_block()
    pos = np.arange(trace.n_block_accesses) - trace.block_offsets[req]
    n_blocks = np.diff(trace.block_offsets)
    hits = np.zeros(trace.n_requests, dtype=np.int64)
    lead = n_blocks.copy()
    evictions = np.zeros(trace.n_requests, dtype=np.int64)
    for k in range(shards):
        mine = node == k
        rows = np.unique(req[mine])
        counts = np.bincount(req[mine], minlength=trace.n_requests)[rows]
        offs = np.concatenate(([0], np.cumsum(counts)))
        sub = Trace.from_arrays(block_tokens=trace.block_tokens, arrival_s=trace.arrival_s[rows],
                                input_tokens=counts * trace.block_tokens,
                                output_tokens=trace.output_tokens[rows], block_offsets=offs,
                                block_hashes=trace.block_hashes[mine],
                                model_index=trace.model_index[rows], models=trace.models)
        res = simulate(sub, node_config(cfg, k, shards), model=model)
        hit = res.hit.astype(bool)
        np.add.at(hits, req[mine], hit)
        np.minimum.at(lead, req[mine][~hit], pos[mine][~hit])
        evictions[rows] += res.records["evictions"].to_numpy()
    tokens = np.where(lead == n_blocks, trace.input_tokens, lead * trace.block_tokens)
    return {"hit_blocks": hits, "prefix_hit_blocks": lead, "prefix_hit_tokens": tokens,
            "evictions": evictions}


def _partition(tmp, trace, shards):
    src = tmp / "t.parquet"
    save_trace(trace, src)
    partition_trace(src, shards, tmp / "p")
    return tmp / "p"


def test_node_capacities_add_up():
    assert [node_capacity(10, k, 3) for k in range(3)] == [4, 3, 3]
    assert sum(node_capacity(7, k, 7) for k in range(7)) == 7
    assert node_capacity(None, 0, 4) is None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), shards=st.integers(1, 4), cap=st.sampled_from([None, 0, 3, 9, 40]),
       ttl=st.sampled_from([None, 30.0, 120.0]), policy=st.sampled_from(["lru", "fifo"]),
       from_write=st.booleans())
def test_blocks_equal_reference_and_separate_runs(tmp_path_factory, seed, shards, cap, ttl, policy,
                                                  from_write):
    trace = random_trace(seed, n_requests=80, duration_s=300.0)
    cfg = CacheConfig(capacity_blocks=cap, policy=policy, ttl_s=ttl,
                      ttl_mode="from_write" if from_write else "refresh_on_hit")
    got = simulate_store_shards(_partition(tmp_path_factory.mktemp("s"), trace, shards), cfg,
                                executor="inline").records
    ref_hits, ref_lead = reference_store(trace, shards, cap, ttl, policy == "lru", from_write)
    np.testing.assert_array_equal(got["hit_blocks"], ref_hits)
    np.testing.assert_array_equal(got["prefix_hit_blocks"], ref_lead)
    sep = separate_runs(trace, shards, cfg)
    for c in COLUMNS:
        np.testing.assert_array_equal(got[c].to_numpy(), sep[c], err_msg=c)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), shards=st.integers(2, 4),
       cap_gib=st.sampled_from([0.1, 0.5, 2.0]), policy=st.sampled_from(["lru", "fifo", "lfu"]))
def test_bytes_and_lfu_equal_separate_runs(tmp_path_factory, seed, shards, cap_gib, policy):
    """Two models of different block sizes: node capacities in bytes, LFU included."""
    trace = random_trace(seed, n_requests=80, models=("llama-3.1-8b", "qwen3-32b"))
    cfg = CacheConfig(capacity_bytes=int(cap_gib * 2**30), policy=policy, ttl_s=200.0)
    got = simulate_store_shards(_partition(tmp_path_factory.mktemp("b"), trace, shards), cfg,
                                executor="inline").records
    sep = separate_runs(trace, shards, cfg)
    for c in COLUMNS:
        np.testing.assert_array_equal(got[c].to_numpy(), sep[c], err_msg=c)


def test_one_shard_is_simulate(tmp_path, mooncake_trace, mooncake_path):
    partition_trace(mooncake_path, 1, tmp_path / "p")
    cfg = CacheConfig(capacity_blocks=5000, ttl_s=300)
    got = simulate_store_shards(tmp_path / "p", cfg, executor="inline")
    want = simulate(mooncake_trace, cfg)
    for c in COLUMNS + ("expirations", "missed_tokens", "input_tokens", "arrival_s"):
        np.testing.assert_array_equal(got.records[c].to_numpy(), want.records[c].to_numpy(), err_msg=c)
    for key in ("block_hit_ratio", "prefix_token_hit_ratio", "unique_blocks", "evictions"):
        assert got.summary_dict[key] == want.summary_dict[key]


def test_local_processes_equal_inline(tmp_path, mooncake_path):
    partition_trace(mooncake_path, 3, tmp_path / "p")
    cfg = CacheConfig(capacity_blocks=3000, ttl_s=120)
    a = simulate_store_shards(tmp_path / "p", cfg, executor="inline")
    b = simulate_store_shards(tmp_path / "p", cfg, executor="local")
    assert a.records.equals(b.records) and a.summary_dict == b.summary_dict


def test_store_policies_and_reuse_are_checked(tmp_path):
    part = _partition(tmp_path, random_trace(1, n_requests=20), 2)
    with pytest.raises(InputError) as err:
        simulate_store_shards(part, CacheConfig(capacity_blocks=5, policy="vllm"))
    assert err.value.where == "--policy"
    with pytest.raises(InputError, match="--model"):
        simulate_store_shards(part, CacheConfig(capacity_bytes=2**30), executor="inline")


@pytest.mark.parametrize("args, where", [
    (("--store-shards", "0"), "--store-shards"),
    (("--store-shards", "100000"), "--store-shards"),
    (("--store-shards", "2", "--policy", "vllm"), "--policy"),
    (("--store-shards", "2", "--latency"), "--latency"),
    (("--store-shards", "2", "--executor", "mpi"), "--executor"),
    (("--store-shards", "2", "--executor", "ray", "--address", "127.0.0.1:1"), "--address"),
    (("--store-shards", "2", "--executor", "ray", "--address", "head-node"), "--address"),
])
def test_simulate_bad_input_is_one_line(cli, mooncake_path, args, where):
    res = cli("simulate", "--trace", str(mooncake_path), "--capacity-blocks", "100", *args)
    assert res.exit_code == 2, res.stdout
    assert where in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_simulate_cli_on_a_partition_folder(cli, tmp_path, mooncake_path):
    assert cli("trace", "partition", str(mooncake_path), "--shards", "2", "--out",
               str(tmp_path / "p")).exit_code == 0
    args = ("simulate", "--trace", str(tmp_path / "p"), "--capacity-blocks", "2000", "--json",
            "--executor", "inline")
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["store_shards"] == 2 and 0 < s["block_hit_ratio"] < 1
    on_the_fly = cli("simulate", "--trace", str(mooncake_path), "--capacity-blocks", "2000",
                     "--json", "--executor", "inline", "--store-shards", "2")
    assert json.loads(on_the_fly.stdout) == s
    wrong = cli(*args, "--store-shards", "3")
    assert wrong.exit_code == 2 and "--store-shards" in wrong.stderr


# ------------------------------------------------------------------ sweep --store-shards


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), shards=st.integers(1, 4), policy=st.sampled_from(["lru", "fifo"]))
def test_store_grid_equals_reference_at_every_point(tmp_path_factory, seed, shards, policy):
    from simkv.sizing.storesweep import store_grid

    trace = random_trace(seed, n_requests=60, duration_s=300.0)
    caps, ttls = [0, 3, 9, None], [30.0, None]
    grid = store_grid(_partition(tmp_path_factory.mktemp("g"), trace, shards), capacities_blocks=caps,
                      ttls_s=ttls, policy=policy, executor="inline")
    assert len(grid) == len(caps) * len(ttls)
    for row, (cap, ttl) in zip(grid.itertuples(), [(c, t) for c in caps for t in ttls], strict=True):
        hits, lead = reference_store(trace, shards, cap, ttl, policy == "lru", False)
        tokens = np.where(lead == np.diff(trace.block_offsets), trace.input_tokens,
                          lead * trace.block_tokens)
        assert row.hit_blocks == hits.sum() and row.prefix_hit_tokens == tokens.sum()


def test_sweep_store_shards_cli(cli, tmp_path, mooncake_path):
    res = cli("sweep", "--trace", str(mooncake_path), "--store-shards", "3", "--capacities-blocks",
              "2000,inf", "--ttls", "1m,inf", "--executor", "inline", "--json")
    assert res.exit_code == 0, res.stderr
    points = json.loads(res.stdout)
    assert [(p["capacity_blocks"], p["ttl_s"]) for p in points] == [(2000, 60.0), (2000, None),
                                                                    (None, 60.0), (None, None)]
    one = cli("simulate", "--trace", str(mooncake_path), "--store-shards", "3", "--capacity-blocks",
              "2000", "--ttl", "1m", "--executor", "inline", "--json")
    s = json.loads(one.stdout)
    assert points[0]["block_hit_ratio"] == s["block_hit_ratio"]
    assert points[0]["prefix_token_hit_ratio"] == s["prefix_token_hit_ratio"]
    for args, where in ((("--store-shards", "3", "--sample-rate", "0.1"), "--store-shards"),
                        (("--policy", "fifo"), "--policy"),
                        (("--store-shards", "0"), "--store-shards")):
        bad = cli("sweep", "--trace", str(mooncake_path), "--capacities-blocks", "100", *args)
        assert bad.exit_code == 2 and where in bad.stderr and bad.stderr.count("\n") == 1
