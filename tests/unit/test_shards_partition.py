"""SHARDS over a trace partition: one sampled shard per task, and the Ray address check."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.errors import InputError
from simkv.sizing.executor import check_ray_address
from simkv.sizing.grid import lru_grid
from simkv.sizing.shards import partition_grid, partition_shards_error
from simkv.trace import save_trace
from simkv.trace.partition import partition_trace
from tests.conftest import random_trace

GRID = dict(capacities_blocks=[0, 2, 10, 50, None], ttls_s=[20, 100, None])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), shards=st.integers(1, 4), frac=st.sampled_from([1.0, 0.5, 0.3]))
def test_task_zero_is_the_in_memory_sample(tmp_path_factory, seed, shards, frac):
    """Shard 0's sample at R <= 1/K is lru_grid's own sample at R, point for point."""
    trace = random_trace(seed, n_requests=120, n_prefixes=30)
    tmp = tmp_path_factory.mktemp("g")
    save_trace(trace, tmp / "t.parquet")
    partition_trace(tmp / "t.parquet", shards, tmp / "p")
    rate = frac / shards
    got = partition_grid(tmp / "p", rate, tasks=1, **GRID)
    want = lru_grid(trace, sample_rate=rate, **GRID)
    assert got.drop(columns=[]).equals(want)


def test_pooled_tasks_add_their_counts(tmp_path, mooncake_path, mooncake_trace):
    partition_trace(mooncake_path, 4, tmp_path / "p")
    one = [partition_grid(tmp_path / "p", 0.25, tasks=k + 1, **GRID) for k in range(4)]
    # with R = 1/K the four tasks' samples are the four shards: together, every access once
    assert int(one[-1]["block_accesses"].iloc[0]) == mooncake_trace.n_block_accesses
    assert np.all(np.diff([int(f["block_accesses"].iloc[0]) for f in one]) > 0)


def test_error_rows_and_rates_that_do_not_fit(tmp_path, mooncake_path):
    partition_trace(mooncake_path, 4, tmp_path / "p")
    frame = partition_shards_error(tmp_path / "p", [0.25, 0.01], **GRID)
    assert list(frame.sample_rate) == [0.25] * 3 + [0.01] * 3
    assert list(frame.estimate[:3]) == ["task 0", "worst single task", "pooled"]
    assert list(frame.tasks[:3]) == [1, 1, 4]
    worst, first = frame.iloc[1], frame.iloc[0]
    assert worst.block_hit_ratio_max_abs_error >= first.block_hit_ratio_max_abs_error
    # at R = 1/K the pooled tasks cover every access: far closer than one quarter alone
    assert frame.iloc[2].sampled_accesses > first.sampled_accesses
    with pytest.raises(InputError, match="partition into at most 3 shards") as err:
        partition_grid(tmp_path / "p", 0.3, **GRID)
    assert err.value.where == "--sample-rate"


@pytest.mark.parametrize("args, where", [
    (("--sample-rate", "0.5"), "--sample-rate"),          # above 1/K for K = 4
    (("--sample-rate", "0"), "--sample-rate"),
    (("--shards-error", "0.1,1.5"), "--shards-error"),
    (("--shards-error", "0.1,abc"), "--shards-error"),
    (("--shards-error", "0.5"), "--shards-error"),
    (("--sample-rate", "0.1", "--belady"), "--belady"),
    (("--sample-rate", "0.1", "--executor", "ray", "--address", "127.0.0.1:1"), "--address"),
])
def test_sweep_partition_bad_rates(cli, tmp_path, mooncake_path, args, where):
    partition_trace(mooncake_path, 4, tmp_path / "p")
    res = cli("sweep", "--trace", str(tmp_path / "p"), "--capacities-blocks", "100,1000", *args)
    assert res.exit_code == 2, res.stdout
    assert where in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_sweep_cli_on_a_partition(cli, tmp_path, mooncake_path):
    partition_trace(mooncake_path, 10, tmp_path / "p")
    res = cli("sweep", "--trace", str(tmp_path / "p"), "--capacities-blocks", "1000,10000",
              "--ttls", "inf", "--shards-error", "0.1,0.01", "--json", "--executor", "inline")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["tasks"] for r in rows] == [1, 1, 10, 1, 1, 10]
    exact = cli("sweep", "--trace", str(tmp_path / "p"), "--capacities-blocks", "1000,10000",
                "--json")
    direct = cli("sweep", "--trace", str(mooncake_path), "--capacities-blocks", "1000,10000",
                 "--json")
    assert json.loads(exact.stdout) == json.loads(direct.stdout)


def test_ray_address_is_checked_before_ray():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        assert check_ray_address(f"127.0.0.1:{port}") == f"127.0.0.1:{port}"
        assert check_ray_address(f"ray://127.0.0.1:{port}") == f"ray://127.0.0.1:{port}"
    assert check_ray_address(None) is None and check_ray_address("auto") == "auto"
    for bad in ("127.0.0.1", "host:port", "127.0.0.1:0", f"127.0.0.1:{port}"):
        with pytest.raises(InputError) as err:
            check_ray_address(bad, timeout_s=0.5)
        assert err.value.where == "--address"
