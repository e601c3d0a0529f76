"""simkv's LRU and FIFO equal libCacheSim's exactly on the real Mooncake trace.

One object per block id, each of size 1, capacities at 1, 5, 10, 25 and 50% of the unique
blocks.  libCacheSim reads the same access stream from its oracleGeneral binary format.
"""

import pytest

from simkv.cache import CacheConfig, simulate
from tests.libcachesim_helper import run_lcs, stream_of_trace, write_oracle_general


@pytest.fixture(scope="module")
def lcs_trace(mooncake_trace, tmp_path_factory):
    ids, times, n_obj = stream_of_trace(mooncake_trace)
    path = write_oracle_general(tmp_path_factory.mktemp("lcs") / "mooncake.oracleGeneral", ids, times)
    return path, n_obj, len(ids)


@pytest.mark.parametrize("policy", ["lru", "fifo"])
@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.10, 0.25, 0.50])
def test_block_hits_equal_libcachesim(mooncake_trace, lcs_trace, policy, fraction):
    path, n_obj, n_acc = lcs_trace
    capacity = int(round(fraction * n_obj))
    lcs_hits = round(run_lcs(path, capacity, policy=policy, n_objects=n_obj).hit_ratio * n_acc)
    ours = simulate(mooncake_trace, CacheConfig(capacity_blocks=capacity, policy=policy))
    assert int(ours.hit.sum()) == lcs_hits
