"""``simkv trace partition``: the spatial hash, the per-shard datasets, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.errors import InputError
from simkv.sizing.stream import spatial_sample_mask
from simkv.trace import load_trace, save_trace
from simkv.trace.partition import partition_trace
from simkv.trace.shardlayout import shard_bounds, shard_of
from simkv.trace.shardset import open_partition, read_shard, reassemble
from tests.conftest import random_trace


@pytest.mark.parametrize("k", [1, 2, 3, 10, 100])
def test_shard_zero_is_the_shards_sample_at_one_over_k(k):
    hashes = np.random.default_rng(np.random.SeedSequence(k)).integers(0, 2**63, 20000, dtype=np.uint64)
    np.testing.assert_array_equal(shard_of(hashes, k) == 0, spatial_sample_mask(hashes, 1 / k))
    counts = np.bincount(shard_of(hashes, k), minlength=k)
    assert len(counts) == k and counts.sum() == len(hashes)
    # bounds by hand: round(i / k * 2^24)
    assert list(shard_bounds(4)) == [0, 1 << 22, 1 << 23, 3 << 22, 1 << 24]


def _write(tmp_path, trace, name="t.parquet"):
    path = tmp_path / name
    save_trace(trace, path)
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), chunk=st.sampled_from([1, 7, 4096]),
       fmt=st.sampled_from(["parquet", "mooncake"]))
def test_partition_holds_each_block_once_and_reassembles(tmp_path_factory, monkeypatch, seed, k,
                                                         chunk, fmt):
    """Mooncake JSONL is read ``chunk`` lines at a time; Parquet one row group at a time, with
    row groups of at most ``chunk`` blocks here, so chunk boundaries fall everywhere."""
    import simkv.trace.parquet as parquet_module

    monkeypatch.setattr(parquet_module, "ROW_GROUP_BLOCKS", chunk)
    if fmt == "mooncake":
        trace = random_trace(seed, n_requests=60, block_tokens=512)
    else:
        trace = random_trace(seed, n_requests=60, models=("llama-3.1-8b", "qwen3-32b"))
    tmp = tmp_path_factory.mktemp("p")
    src = _write(tmp, trace, "t.jsonl" if fmt == "mooncake" else "t.parquet")
    trace = load_trace(src)  # what the file holds (Mooncake keeps no sessions or models)
    manifest = partition_trace(src, k, tmp / "parts", chunk_requests=chunk)
    assert manifest["unique_blocks"] == len(np.unique(trace.block_hashes))
    part = open_partition(tmp / "parts")
    assert part.shards == k and part.n_blocks == trace.n_block_accesses
    seen = 0
    for s in range(k):
        data = read_shard(part, s)
        assert np.all(shard_of(data.hashes, k) == s)
        assert np.all(np.diff(data.requests) > 0)
        rows = np.repeat(data.requests, np.diff(data.offsets))
        start = trace.block_offsets[rows]
        np.testing.assert_array_equal(trace.block_hashes[start + data.positions], data.hashes)
        seen += len(data.hashes)
    assert seen == trace.n_block_accesses
    back = reassemble(part)
    for name in ("arrival_s", "session_ids", "model_index", "input_tokens", "output_tokens",
                 "block_offsets", "block_hashes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(trace, name))
    assert back.models == trace.models


def test_mooncake_jsonl_in_line_chunks(tmp_path, mooncake_path, mooncake_trace):
    partition_trace(mooncake_path, 3, tmp_path / "a", chunk_requests=7)
    assert reassemble(open_partition(tmp_path / "a")).equals(mooncake_trace)


def test_bad_shard_counts_write_nothing(tmp_path):
    trace = random_trace(3, n_requests=20)
    src = _write(tmp_path, trace)
    unique = len(np.unique(trace.block_hashes))
    for bad, message in ((0, ">= 1"), (unique + 1, f"{unique} unique blocks")):
        with pytest.raises(InputError, match=message) as err:
            partition_trace(src, bad, tmp_path / "out")
        assert err.value.where == "--shards"
        assert not (tmp_path / "out").exists()
    partition_trace(src, unique, tmp_path / "out")  # exactly one block per shard is allowed


def test_out_folder_is_never_clobbered(tmp_path):
    src = _write(tmp_path, random_trace(4, n_requests=20))
    out = tmp_path / "out"
    partition_trace(src, 2, out)
    with pytest.raises(InputError, match="not empty"):
        partition_trace(src, 2, out)
    partition_trace(src, 3, out, force=True)  # a partition simkv wrote may be replaced
    assert json.loads((out / "manifest.json").read_text())["shards"] == 3
    assert not (out / "shard-00003.parquet").exists()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="notes.txt"):
        partition_trace(src, 2, out, force=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_damaged_partition_is_named(tmp_path):
    src = _write(tmp_path, random_trace(5, n_requests=20))
    partition_trace(src, 2, tmp_path / "p")
    (tmp_path / "p" / "shard-00001.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="shard-00001.parquet"):
        read_shard(open_partition(tmp_path / "p"), 1)
    with pytest.raises(InputError, match="no manifest"):
        open_partition(tmp_path)


def test_cli_partition_and_errors(cli, tmp_path, mooncake_path):
    res = cli("trace", "partition", str(mooncake_path), "--shards", "4", "--out",
              str(tmp_path / "p"), "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["shards"] == 4
    for args, where in ((("--shards", "0"), "--shards"), (("--shards", "10000000"), "--shards"),
                        (("--shards", "2", "--chunk-requests", "0"), "--chunk-requests")):
        res = cli("trace", "partition", str(mooncake_path), *args, "--out", str(tmp_path / "q"))
        assert res.exit_code == 2 and where in res.stderr
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
