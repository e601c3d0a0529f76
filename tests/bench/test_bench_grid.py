"""A whole LRU capacity x TTL grid (32 x 8) against ONE libCacheSim LRU run on the same stream.

simkv starts from the Trace with dense ids already computed (libCacheSim starts from its binary
file, already written); both times are medians measured side by side in this run.  The ratio
``grid_over_libcachesim_ratio`` below 1 means the whole grid took less time than
libCacheSim's single configuration.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.cache.stream import dense_block_ids
from simkv.sizing import lru_grid
from simkv.trace import load_trace
from tests.bench.streams import prefix_stream
from tests.conftest import MOONCAKE
from tests.libcachesim_helper import run_lcs, stream_of_trace, write_oracle_general

pytestmark = pytest.mark.bench

TTLS_S = [1, 10, 30, 60, 300, 600, 3600, None]


def _grid_vs_lcs(benchmark, trace, tmp_path, rounds: int) -> None:
    ids, times, n_obj = stream_of_trace(trace)
    path = write_oracle_general(tmp_path / "stream.oracleGeneral", ids, times)
    caps = [int(c) for c in np.unique(np.geomspace(max(1, n_obj // 1000), n_obj, 32).astype(np.int64))]
    assert len(caps) >= 32 and len(TTLS_S) >= 8
    one_cap = caps[len(caps) // 2]
    grid = lru_grid(trace, capacities_blocks=caps, ttls_s=TTLS_S)  # compile outside the timing
    lcs_runs = [run_lcs(path, one_cap, n_objects=n_obj) for _ in range(rounds)]
    result = benchmark.pedantic(lru_grid, args=(trace,),
                                kwargs=dict(capacities_blocks=caps, ttls_s=TTLS_S),
                                rounds=rounds, iterations=1)
    lcs_runs += [run_lcs(path, one_cap, n_objects=n_obj) for _ in range(rounds)]
    lcs_s = statistics.median(r.elapsed_s for r in lcs_runs)
    grid_s = benchmark.stats.stats.median
    # the grid point at libCacheSim's capacity without TTL is libCacheSim's answer
    point = result[(result.capacity_blocks == one_cap) & result.ttl_s.isna()]
    assert float(point.block_hit_ratio.iloc[0]) == pytest.approx(lcs_runs[0].hit_ratio, abs=1e-12)
    assert result.equals(grid)
    benchmark.extra_info.update({
        "accesses": int(len(ids)),
        "grid_points": len(result),
        "capacities": len(caps),
        "ttls": len(TTLS_S),
        "grid_s": grid_s,
        "libcachesim_one_run_s": lcs_s,
        "grid_over_libcachesim_ratio": grid_s / lcs_s,
        "simkv_one_simulate_s": _one_simulate_s(trace, one_cap),
    })


def _one_simulate_s(trace, cap: int) -> float:
    import time

    cfg = CacheConfig(capacity_blocks=cap)
    simulate(trace, cfg)
    t0 = time.perf_counter()
    simulate(trace, cfg)
    return time.perf_counter() - t0


def test_grid_vs_libcachesim_mooncake(benchmark, tmp_path):
    trace = load_trace(MOONCAKE)
    dense_block_ids(trace)
    _grid_vs_lcs(benchmark, trace, tmp_path, rounds=15)


def test_grid_vs_libcachesim_10m_stream(benchmark, tmp_path):
    trace = prefix_stream()
    dense_block_ids(trace)
    _grid_vs_lcs(benchmark, trace, tmp_path, rounds=3)
