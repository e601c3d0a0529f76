"""Drive libCacheSim (pip ``libcachesim``) on a simkv access stream, for tests and benchmarks.

A dense-id stream (one request per block access) is written once to libCacheSim's binary
``oracleGeneral`` format (24-byte records: uint32 time, uint64 id, uint32 size, int64 next
access), then replayed with its C reader and ``process_trace``.  The hash table is sized to the
stream (``hashpower``), since libCacheSim's default (2**24 slots) spends most of a small run
allocating and clearing it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORACLE_GENERAL = np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"),
                           ("next_access_vtime", "<i8")])
assert ORACLE_GENERAL.itemsize == 24


@dataclass(frozen=True)
class LcsRun:
    """One libCacheSim run: object (request) hit ratio and the wall time of ``process_trace``."""

    hit_ratio: float
    elapsed_s: float
    n_requests: int


def write_oracle_general(path: Path, ids: np.ndarray, times_s: np.ndarray | None = None,
                         sizes: np.ndarray | None = None) -> Path:
    """Write one record per access: ``ids`` dense int ids (id 0 is shifted to 1, since
    libCacheSim treats 0 specially in some readers), optional per-access times and sizes."""
    rec = np.zeros(len(ids), dtype=ORACLE_GENERAL)
    rec["obj_id"] = np.asarray(ids, dtype=np.uint64) + np.uint64(1)
    rec["obj_size"] = 1 if sizes is None else np.asarray(sizes, dtype=np.uint32)
    rec["time"] = 0 if times_s is None else np.asarray(times_s, dtype=np.float64).astype(np.uint32)
    rec["next_access_vtime"] = -1
    rec.tofile(path)
    return Path(path)


def stream_of_trace(trace) -> tuple[np.ndarray, np.ndarray, int]:
    """(dense ids per block access, arrival second per access, number of objects)."""
    from simkv.cache.stream import dense_block_ids

    ids, n_obj = dense_block_ids(trace)
    times = np.repeat(trace.arrival_s, np.diff(trace.block_offsets))
    return ids, times, n_obj


def run_lcs(path: Path, capacity: int, *, policy: str = "lru", n_objects: int | None = None) -> LcsRun:
    """Replay ``path`` through libCacheSim ``policy`` (lru | fifo) holding ``capacity`` objects
    of size 1 (or bytes, when the file carries sizes)."""
    import libcachesim as lcs

    cls = {"lru": lcs.LRU, "fifo": lcs.FIFO}[policy]
    hashpower = max(10, math.ceil(math.log2(max(2, n_objects or 1 << 16))) + 1)
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    cache = cls(int(capacity), hashpower=hashpower)
    t0 = time.perf_counter()
    _, miss_ratio = cache.process_trace(reader)
    elapsed = time.perf_counter() - t0
    n = Path(path).stat().st_size // ORACLE_GENERAL.itemsize
    return LcsRun(hit_ratio=1.0 - float(miss_ratio), elapsed_s=elapsed, n_requests=int(n))
