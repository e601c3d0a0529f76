"""The access stream a cache kernel consumes: dense object ids, sizes and request bounds.

Kernels work on dense ``int64`` object ids (0..U-1 in order of first appearance) rather than
64-bit hashes, so per-object state lives in flat arrays instead of hash tables.  The mapping is
computed once per trace (numba hash table, linear time) and cached on the Trace object; its
cost is reported separately from the simulation in the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from simkv import guard
from simkv.hashing import fibonacci_hash
from simkv.trace.model import Trace


@numba.njit(cache=True)
def _densify(keys: np.ndarray) -> tuple[np.ndarray, int]:  # pragma: no cover - compiled
    n = keys.shape[0]
    size = 1
    while size < 2 * n + 2:
        size *= 2
    mask = size - 1
    table_keys = np.zeros(size, dtype=np.uint64)
    table_vals = np.full(size, -1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    next_id = 0
    for i in range(n):
        k = keys[i]
        h = fibonacci_hash(k)
        slot = np.int64(h & np.uint64(mask))
        while True:
            v = table_vals[slot]
            if v == -1:
                table_keys[slot] = k
                table_vals[slot] = next_id
                out[i] = next_id
                next_id += 1
                break
            if table_keys[slot] == k:
                out[i] = v
                break
            slot = (slot + 1) & mask
    return out, next_id


#: Peak bytes of densify per key: 8 of output ids and a table of >= 2 slots x 16 bytes.
ID_MAP_BYTES_PER_KEY = 40


def densify(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids (first-appearance order) for an array of uint64 keys, and how many there are."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    # the id map: output ids plus an open-addressing table of at least twice the keys
    guard.check(keys.size * ID_MAP_BYTES_PER_KEY, f"the id map of {keys.size:,} block accesses")
    ids, n = _densify(keys)
    return ids, int(n)


def dense_block_ids(trace: Trace) -> tuple[np.ndarray, int]:
    """Dense ids of ``trace.block_hashes``, computed once and cached on the trace object."""
    cache = trace.__dict__.setdefault("_derived", {})
    if "dense" not in cache:
        cache["dense"] = densify(trace.block_hashes)
    return cache["dense"]


@dataclass(frozen=True)
class AccessStream:
    """What a kernel needs: ``ids[j]`` is the object of access j, ``sizes[obj]`` its weight."""

    ids: np.ndarray          # int64, per block access
    n_objects: int
    sizes: np.ndarray        # int64, per object (1 when capacity is counted in blocks)
    req_offsets: np.ndarray  # int64, n_requests + 1
    req_time_s: np.ndarray   # float64, per request


def build_stream(trace: Trace, block_sizes: np.ndarray | None, *, content: bool = False) -> AccessStream:
    """An access stream over chained hashes (prefix reuse) or content hashes (chunk reuse).

    ``block_sizes`` gives each *access* its byte weight (from its request's model); an object
    takes the weight of its first access.  None weighs every object 1.
    """
    if content:
        if trace.content_hashes is None:
            raise ValueError("trace has no content hashes")
        ids, n_obj = densify(trace.content_hashes)
    else:
        ids, n_obj = dense_block_ids(trace)
    if block_sizes is None:
        sizes = np.ones(n_obj, dtype=np.int64)
    else:
        sizes = np.zeros(n_obj, dtype=np.int64)
        # first access of each object wins: write in reverse so the earliest write lands last
        sizes[ids[::-1]] = np.asarray(block_sizes, dtype=np.int64)[::-1]
    return AccessStream(ids=ids, n_objects=n_obj, sizes=sizes,
                        req_offsets=trace.block_offsets, req_time_s=trace.arrival_s)
