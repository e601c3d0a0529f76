"""simkv's LRU and FIFO equal libCacheSim's exactly on the real Mooncake trace.

One object per block id, each of size 1, capacities at 1, 5, 10, 25 and 50% of the unique
blocks.  libCacheSim reads the same access stream from its oracleGeneral binary format.
"""

import numpy as np
import pytest

libcachesim = pytest.importorskip("libcachesim")

from simkv.cache import CacheConfig, simulate  # noqa: E402
from simkv.cache.stream import dense_block_ids  # noqa: E402

ORACLE_DTYPE = np.dtype([("t", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])


@pytest.fixture(scope="module")
def lcs_trace(mooncake_trace, tmp_path_factory):
    ids, n_obj = dense_block_ids(mooncake_trace)
    rec = np.zeros(len(ids), dtype=ORACLE_DTYPE)
    rec["t"] = np.repeat(mooncake_trace.arrival_s.astype(np.uint32), np.diff(mooncake_trace.block_offsets))
    rec["id"] = ids.astype(np.uint64) + 1
    rec["size"] = 1
    rec["next"] = -1
    path = tmp_path_factory.mktemp("lcs") / "mooncake.oracleGeneral"
    rec.tofile(path)
    return path, n_obj, len(ids)


@pytest.mark.parametrize("policy", ["lru", "fifo"])
@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.10, 0.25, 0.50])
def test_block_hits_equal_libcachesim(mooncake_trace, lcs_trace, policy, fraction):
    path, n_obj, n_acc = lcs_trace
    capacity = int(round(fraction * n_obj))
    cls = {"lru": libcachesim.LRU, "fifo": libcachesim.FIFO}[policy]
    reader = libcachesim.TraceReader(str(path), libcachesim.TraceType.ORACLE_GENERAL_TRACE)
    miss_ratio, _ = cls(capacity).process_trace(reader)
    lcs_hits = round((1.0 - miss_ratio) * n_acc)
    ours = simulate(mooncake_trace, CacheConfig(capacity_blocks=capacity, policy=policy))
    assert int(ours.hit.sum()) == lcs_hits
