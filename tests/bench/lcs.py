"""Drive libCacheSim from its fastest reader (oracleGeneral binary) for side-by-side benchmarks."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

ORACLE_DTYPE = np.dtype([("t", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])


def write_oracle(ids: np.ndarray, times_s: np.ndarray, path: Path) -> Path:
    """One record per access; ids are shifted by one (libCacheSim treats 0 specially)."""
    rec = np.zeros(len(ids), dtype=ORACLE_DTYPE)
    rec["t"] = times_s.astype(np.uint32)
    rec["id"] = ids.astype(np.uint64) + 1
    rec["size"] = 1
    rec["next"] = -1
    rec.tofile(path)
    return path


def run_lru(path: Path, capacity: int, n_objects: int, policy: str = "lru") -> tuple[float, float]:
    """(hit ratio, seconds) of one libCacheSim run with a hash table sized to the trace."""
    import libcachesim as lcs

    hashpower = max(16, math.ceil(math.log2(max(2, n_objects))) + 1)
    cls = {"lru": lcs.LRU, "fifo": lcs.FIFO}[policy]
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    cache = cls(capacity, hashpower=hashpower)
    t0 = time.perf_counter()
    miss, _ = cache.process_trace(reader)
    return 1.0 - miss, time.perf_counter() - t0
