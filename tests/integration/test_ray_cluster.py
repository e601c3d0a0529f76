"""A real Ray cluster on loopback: `ray start --head` plus one worker node, each with one CPU.

Both nodes are started here (``ray start --block`` in its own process group, with a private
temp folder so no other Ray on the machine is joined or disturbed) and stopped here by their
process group ids.  The store-shard simulation and the SHARDS grid over a partition must give
the same results on the cluster (``--executor ray --address``) as with local processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

RAY = Path(sys.executable).with_name("ray")
NODE_ARGS = ["--num-cpus", "1", "--object-store-memory", str(200 * 2**20), "--disable-usage-stats",
             "--node-ip-address", "127.0.0.1", "--block"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: token auth off on both sides: Ray 2.60 turns it on whenever ~/.ray/auth_token exists, a file
#: any other Ray on the machine may create or replace mid-test
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, **ENV)
    with log.open("wb") as fh:
        return subprocess.Popen([str(RAY), "start", *args, *NODE_ARGS], stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the node's process group, then SIGKILL what is left after 5 s."""
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            os.killpg(proc.pid, 0)  # raises once the whole group is gone
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass


def _wait_nodes(address: str, n: int, timeout_s: float = 90.0) -> None:
    import ray

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ray.init(address=address, log_to_driver=False)
            try:
                alive = [x for x in ray.nodes() if x["Alive"]]
            finally:
                ray.shutdown()
            if len(alive) >= n:
                return
        except ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the Ray cluster at {address} did not reach {n} nodes")
        time.sleep(2)


@pytest.fixture(scope="module")
def ray_cluster():
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)  # the driver (this process) connects without a token too
    tmp = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp"))  # short: Ray's socket paths are long
    port = _free_port()
    address = f"127.0.0.1:{port}"
    procs = []
    try:
        procs.append(_start(["--head", "--port", str(port), "--include-dashboard=false",
                             "--temp-dir", str(tmp)], tmp / "head.log"))
        _wait_nodes(address, 1)
        procs.append(_start(["--address", address], tmp / "worker.log"))
        _wait_nodes(address, 2)
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def partition(tmp_path_factory, mooncake_path):
    from simkv.trace.partition import partition_trace

    out = tmp_path_factory.mktemp("ray") / "p"
    partition_trace(mooncake_path, 4, out)
    return out


@pytest.mark.slow
def test_store_shards_on_ray_equal_local(ray_cluster, partition, cli, tmp_path, mooncake_trace):
    import pandas as pd

    common = ("simulate", "--trace", str(partition), "--capacity-blocks", "4000", "--ttl", "2m",
              "--json")
    local = cli(*common, "--executor", "local", "--records", str(tmp_path / "local.parquet"))
    on_ray = cli(*common, "--executor", "ray", "--address", ray_cluster,
                 "--records", str(tmp_path / "ray.parquet"))
    assert local.exit_code == 0 and on_ray.exit_code == 0, local.stderr + on_ray.stderr
    assert json.loads(on_ray.stdout) == json.loads(local.stdout)
    records = pd.read_parquet(tmp_path / "ray.parquet")
    assert records.equals(pd.read_parquet(tmp_path / "local.parquet"))
    # and K shards on Ray equal K separate in-process simulate runs, recombined
    from simkv.cache import CacheConfig
    from tests.unit.test_storeshards import COLUMNS, separate_runs

    sep = separate_runs(mooncake_trace, 4, CacheConfig(capacity_blocks=4000, ttl_s=120))
    for c in COLUMNS:
        assert (records[c].to_numpy() == sep[c]).all(), c


@pytest.mark.slow
def test_shards_sampling_on_ray_equals_local(ray_cluster, partition, cli):
    common = ("sweep", "--trace", str(partition), "--capacities-blocks", "100,1000,10000,inf",
              "--ttls", "1m,inf", "--sample-rate", "0.1", "--json")
    local = cli(*common, "--executor", "local")
    on_ray = cli(*common, "--executor", "ray", "--address", ray_cluster)
    assert local.exit_code == 0 and on_ray.exit_code == 0, local.stderr + on_ray.stderr
    assert json.loads(on_ray.stdout) == json.loads(local.stdout)


@pytest.mark.slow
def test_store_grid_on_ray_equals_local(ray_cluster, partition, cli):
    common = ("sweep", "--trace", str(partition), "--store-shards", "4", "--capacities-blocks",
              "1000,inf", "--ttls", "1m,inf", "--json")
    local = cli(*common, "--executor", "local")
    on_ray = cli(*common, "--executor", "ray", "--address", ray_cluster)
    assert local.exit_code == 0 and on_ray.exit_code == 0, local.stderr + on_ray.stderr
    assert json.loads(on_ray.stdout) == json.loads(local.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_exact_grid_on_ray_equals_local(ray_cluster, cli, mooncake_path, mooncake_trace, tmp_path,
                                        suffix):
    """Each Ray task reads the trace file itself (only its path is shipped)."""
    from simkv.trace import save_trace

    path = mooncake_path
    if suffix == ".parquet":
        path = tmp_path / "m.parquet"
        save_trace(mooncake_trace, path)
    common = ("sweep", "--trace", str(path), "--capacities-blocks", "100,1000,inf",
              "--ttls", "1m,inf", "--parts", "2", "--chunk-requests", "500", "--json")
    local = cli(*common, "--executor", "local")
    on_ray = cli(*common, "--executor", "ray", "--address", ray_cluster)
    assert local.exit_code == 0 and on_ray.exit_code == 0, local.stderr + on_ray.stderr
    assert json.loads(on_ray.stdout) == json.loads(local.stdout)
