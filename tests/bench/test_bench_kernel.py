"""simkv's single-configuration LRU against libCacheSim's LRU on the same ~10M-access stream.

Both start from the stream already loaded: libCacheSim from its binary trace file, simkv from
its Trace (dense ids computed once; that conversion, and writing libCacheSim's file, are
reported separately).  The ratio is accesses/s of simkv over libCacheSim, measured in one run.
"""

import statistics
import time

import pytest

from simkv.cache import CacheConfig, simulate
from simkv.cache.stream import dense_block_ids
from tests.bench.streams import prefix_stream
from tests.libcachesim_helper import run_lcs, stream_of_trace, write_oracle_general

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    trace = prefix_stream()
    t0 = time.perf_counter()
    dense_block_ids(trace)
    densify_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids, times, n_obj = stream_of_trace(trace)
    path = write_oracle_general(tmp_path_factory.mktemp("lcs") / "s.oracleGeneral", ids, times)
    write_s = time.perf_counter() - t0
    return trace, path, n_obj, densify_s, write_s


def test_lru_kernel_vs_libcachesim(benchmark, stream):
    trace, path, n_obj, densify_s, write_s = stream
    capacity = n_obj // 10
    cfg = CacheConfig(capacity_blocks=capacity)
    simulate(trace, cfg)  # compile / load the numba cache outside the timing
    lcs_runs = [run_lcs(path, capacity, n_objects=n_obj) for _ in range(3)]
    lcs_hit = lcs_runs[0].hit_ratio
    lcs_s = statistics.median(r.elapsed_s for r in lcs_runs)
    result = benchmark.pedantic(simulate, args=(trace, cfg), rounds=5, iterations=1)
    ours_s = benchmark.stats.stats.median
    n = trace.n_block_accesses
    assert result.summary_dict["block_hit_ratio"] == pytest.approx(lcs_hit, abs=1e-12)
    benchmark.extra_info.update({
        "accesses": n,
        "simkv_accesses_per_s": n / ours_s,
        "libcachesim_accesses_per_s": n / lcs_s,
        "speedup_vs_libcachesim_ratio": lcs_s / ours_s,
        "densify_s": densify_s,
        "libcachesim_trace_write_s": write_s,
    })
