"""``simkv sweep`` end to end: JSON and Parquet output, errors, executors (local, Ray)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.sizing import lru_grid
from simkv.trace import load_trace


def test_sweep_json_points_match_simulate(cli, mooncake_path):
    res = cli("sweep", "--trace", str(mooncake_path), "--capacities-blocks", "500,5000,inf",
              "--ttls", "1m,5m,inf", "--json", "--belady")
    assert res.exit_code == 0, res.stderr
    points = json.loads(res.stdout)
    assert len(points) == 9
    trace = load_trace(mooncake_path)
    for p in points:
        assert set(p) >= {"capacity_blocks", "ttl_s", "block_hit_ratio", "prefix_token_hit_ratio",
                          "belady_block_hit_ratio"}
        s = simulate(trace, CacheConfig(capacity_blocks=p["capacity_blocks"], ttl_s=p["ttl_s"])).summary_dict
        assert p["block_hit_ratio"] == pytest.approx(s["block_hit_ratio"], abs=1e-12)
        assert p["prefix_token_hit_ratio"] == pytest.approx(s["prefix_token_hit_ratio"], abs=1e-12)
        assert p["belady_block_hit_ratio"] >= p["block_hit_ratio"]
    assert [p["ttl_s"] for p in points[:3]] == [60.0, 300.0, None]
    assert points[-1]["capacity_blocks"] is None


def test_sweep_bytes_parquet_and_no_overwrite(cli, mooncake_path, tmp_path):
    out = tmp_path / "grid.parquet"
    args = ("sweep", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--capacities",
            "1GiB,20GiB", "--ttls", "5m,inf", "--out", str(out))
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    frame = pd.read_parquet(out)
    assert list(frame.columns[:4]) == ["capacity_bytes", "ttl_s", "block_hit_ratio",
                                       "prefix_token_hit_ratio"]
    assert len(frame) == 4 and frame.capacity_bytes.iloc[-1] == 20 * 2**30
    before = out.read_bytes()
    again = cli(*args)
    assert again.exit_code == 2 and "refusing to overwrite" in again.stderr
    assert out.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (("--capacities-blocks", "10", "--capacities", "1GiB"), "exactly one"),
    (("--capacities-blocks", "ten"), "--capacities-blocks"),
    (("--capacities-blocks", "10", "--ttls", "0"), "--ttls"),
    (("--capacities", "1GiB"), "--model"),
    (("--capacities-blocks", "10", "--sample-rate", "2"), "--sample-rate"),
    (("--capacities-blocks", "10", "--executor", "mpi"), "--executor"),
])
def test_sweep_bad_input_is_one_line(cli, mooncake_path, args, message):
    res = cli("sweep", "--trace", str(mooncake_path), *args)
    assert res.exit_code == 2
    assert message in res.stderr and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr


def test_sweep_shards_error_report(cli, mooncake_path):
    res = cli("sweep", "--trace", str(mooncake_path), "--capacities-blocks", "1000,10000",
              "--ttls", "inf", "--shards-error", "1,0.1", "--json")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows[0]["block_hit_ratio_max_abs_error"] == 0.0
    assert 0 < rows[1]["sampled_accesses"] < rows[0]["sampled_accesses"]


@pytest.mark.slow
def test_local_process_pool_equals_inline(mooncake_trace):
    kw = dict(capacities_blocks=[100, 1000, None], ttls_s=[10, 60, 600, None])
    inline = lru_grid(mooncake_trace, **kw)
    pooled = lru_grid(mooncake_trace, executor="local", ttl_chunks=2, **kw)
    assert pooled.equals(inline)


@pytest.mark.slow
def test_ray_executor_equals_local(mooncake_trace, cli, mooncake_path):
    import ray

    from simkv.trace.model import Trace

    # two size classes (two models) and two TTL chunks: four independent Ray tasks
    n = mooncake_trace.n_requests
    two = Trace.from_arrays(
        block_tokens=mooncake_trace.block_tokens, arrival_s=mooncake_trace.arrival_s,
        input_tokens=mooncake_trace.input_tokens, output_tokens=mooncake_trace.output_tokens,
        block_offsets=mooncake_trace.block_offsets, block_hashes=mooncake_trace.block_hashes,
        model_index=[i % 2 for i in range(n)], models=("llama-3.1-8b", "qwen3-32b"))
    # 100 MiB holds a llama-3.1-8b block (64 MiB) but not a qwen3-32b one (128 MiB)
    kw = dict(capacities_bytes=[100 * 2**20, 2**30, 64 * 2**30], ttls_s=[10, 60, 600, None])
    local = lru_grid(two, **kw)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = lru_grid(two, executor="ray", ttl_chunks=2, **kw)
    finally:
        ray.shutdown()
    assert on_ray.equals(local)


# ------------------------------------------------------------------ simkv lifecycle


@pytest.fixture
def small_trace_file(tmp_path, mooncake_trace):
    from simkv.trace import save_trace

    path = tmp_path / "head.parquet"
    save_trace(mooncake_trace.head(400), path)
    return path


def test_lifecycle_writes_the_storage_view(cli, small_trace_file, tmp_path):
    out = tmp_path / "view"
    args = ("lifecycle", "--trace", str(small_trace_file), "--model", "llama-3.1-8b",
            "--hbm", "2GiB", "--dram", "8GiB", "--event", "60s:replica_restart",
            "--event", "90s:reset", "--out-dir", str(out), "--json")
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["requests"] == 400 and 0 < summary["token_hit_ratio"] < 1
    frames = {f: pd.read_parquet(out / f"{f}.parquet") for f in
              ("records", "timeline", "bytes_by_model", "components", "events")}
    assert len(frames["records"]) == 400
    assert set(frames["timeline"].level) == {"hbm", "dram", "bucket"}
    assert list(frames["events"].kind) == ["replica_restart", "reset"]
    again = cli(*args)
    assert again.exit_code == 2 and "refusing to overwrite" in again.stderr
    assert cli(*args, "--force").exit_code == 0


def test_lifecycle_levels_yaml(cli, small_trace_file, tmp_path):
    spec = tmp_path / "levels.yaml"
    spec.write_text(
        "placement: exclusive\n"
        "levels:\n"
        "  - {name: hbm, capacity: 1GiB, chunk_tokens: 512, read_bandwidth: 3TB, write_bandwidth: 3TB}\n"
        "  - {name: bucket, capacity: inf, chunk_tokens: 512, read_bandwidth: 2GB,\n"
        "     write_bandwidth: 2GB, latency: 5ms, persistent: true, price_usd_per_gib_month: 0.02}\n"
        "events:\n"
        "  - {time_s: 60, kind: replica_restart}\n")
    res = cli("lifecycle", "--trace", str(small_trace_file), "--model", "llama-3.1-8b",
              "--levels", str(spec), "--json")
    assert res.exit_code == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["placement"] == "exclusive" and s["served_tokens_bucket"] > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("levels:\n  - {name: hbm, capacity: lots, chunk_tokens: 16, read_bandwidth: 1,"
                   " write_bandwidth: 1}\n")
    res = cli("lifecycle", "--trace", str(small_trace_file), "--model", "llama-3.1-8b",
              "--levels", str(bad))
    assert res.exit_code == 2
    assert "bad.yaml" in res.stderr and "levels.0.capacity" in res.stderr


@pytest.mark.parametrize("args, message", [
    (("--event", "1h:explode"), "unknown lifecycle event"),
    (("--placement", "exclusive", "--hbm-chunk", "512", "--chunk", "1024"), "same chunk_tokens"),
    (("--admission", "maybe"), "admission"),
])
def test_lifecycle_bad_input(cli, small_trace_file, args, message):
    res = cli("lifecycle", "--trace", str(small_trace_file), "--model", "llama-3.1-8b", *args)
    assert res.exit_code == 2 and message in res.stderr and "Traceback" not in res.stderr
