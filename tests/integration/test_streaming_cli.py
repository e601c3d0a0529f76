"""The streaming commands from the CLI: chunk sizes, records, progress lines, bad chunk sizes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.trace import load_trace, save_trace


@pytest.fixture(scope="module")
def mooncake_parquet(tmp_path_factory, mooncake_trace):
    path = tmp_path_factory.mktemp("stream") / "m.parquet"
    save_trace(mooncake_trace, path)
    return path


@pytest.mark.parametrize("command", [
    ["simulate", "--capacity-blocks", "100"],
    ["sweep", "--capacities-blocks", "100"],
])
@pytest.mark.parametrize("bad", ["0", "-5"])
def test_bad_chunk_size_is_one_line_exit_2(cli, mooncake_path, command, bad):
    res = cli(command[0], "--trace", str(mooncake_path), *command[1:], "--chunk-requests", bad)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--chunk-requests" in lines[0]
    assert "Traceback" not in res.stderr


def test_generate_bad_chunk_size(cli, tmp_path):
    res = cli("workload", "generate", "support-assistant", "--hours", "0.1", "--out",
              str(tmp_path / "w.parquet"), "--chunk-requests", "0")
    assert res.exit_code == 2 and "--chunk-requests" in res.stderr
    assert not (tmp_path / "w.parquet").exists()


def test_simulate_records_written_per_chunk(cli, mooncake_parquet, mooncake_trace, tmp_path):
    """Records streamed to Parquet in chunks of 500 equal the in-memory simulation's."""
    out = tmp_path / "rec.parquet"
    res = cli("simulate", "--trace", str(mooncake_parquet), "--capacity-blocks", "3000",
              "--ttl", "10m", "--chunk-requests", "500", "--records", str(out), "--json")
    assert res.exit_code == 0, res.stderr
    whole = simulate(mooncake_trace, CacheConfig(capacity_blocks=3000, ttl_s=600.0))
    got = pd.read_parquet(out)
    assert len(got) == mooncake_trace.n_requests
    for col in ("request", "hit_blocks", "prefix_hit_tokens", "evictions", "expirations"):
        assert np.array_equal(got[col].to_numpy(), whole.records[col].to_numpy()), col
    summary = json.loads(res.stdout)
    assert summary["block_hit_ratio"] == whole.summary_dict["block_hit_ratio"]
    # on a pipe (not a terminal), progress is a line per tenth of the requests on stderr
    progress = [ln for ln in res.stderr.splitlines() if "requests" in ln]
    assert len(progress) >= 8 and progress[-1].endswith("(100%) requests")


def test_sweep_chunked_equals_whole(cli, mooncake_parquet, mooncake_path):
    args = ["--capacities-blocks", "500,5000,inf", "--ttls", "1m,1h,inf", "--json"]
    a = cli("sweep", "--trace", str(mooncake_parquet), "--chunk-requests", "7", *args)
    b = cli("sweep", "--trace", str(mooncake_path), *args)
    assert a.exit_code == 0 and b.exit_code == 0, a.stderr + b.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_convert_streams_losslessly(cli, mooncake_parquet, mooncake_trace, tmp_path):
    back = tmp_path / "back.jsonl"
    res = cli("trace", "convert", str(mooncake_parquet), str(back))
    assert res.exit_code == 0, res.stderr
    assert load_trace(back).equals(mooncake_trace)
