"""Slow, obviously-correct cache simulation: the twin every compiled kernel is tested against.

Plain Python containers, one request at a time, expiry by scanning every entry.  Use it only
for small traces (tests); it returns the same per-access hit flags and per-request eviction and
expiration counts as the kernels.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from simkv.cache.stream import AccessStream


def reference_run(stream: AccessStream, *, policy: str, capacity: int, ttl: float,
                  from_write: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``capacity < 0`` is unlimited, ``ttl < 0`` none; policy in lru | fifo | lfu."""
    ids, sizes = stream.ids, stream.sizes
    n_req = len(stream.req_offsets) - 1
    hit = np.zeros(len(ids), dtype=np.uint8)
    evictions = np.zeros(n_req, dtype=np.int64)
    expirations = np.zeros(n_req, dtype=np.int64)
    order: OrderedDict[int, None] = OrderedDict()  # first = victim end for lru/fifo
    stamp: dict[int, float] = {}
    freq: dict[int, int] = {}
    last_use: dict[int, int] = {}
    used = 0
    counter = 0
    for r in range(n_req):
        t = float(stream.req_time_s[r])
        if ttl >= 0:
            for o in [o for o in order if t - stamp[o] >= ttl]:
                del order[o]
                used -= int(sizes[o])
                expirations[r] += 1
        for j in range(stream.req_offsets[r], stream.req_offsets[r + 1]):
            o = int(ids[j])
            counter += 1
            if o in order:
                hit[j] = 1
                if policy == "lru":
                    order.move_to_end(o)
                freq[o] += 1
                last_use[o] = counter
                if not from_write:
                    stamp[o] = t
                continue
            size = int(sizes[o])
            if capacity >= 0:
                if size > capacity:
                    continue
                while used + size > capacity:
                    if policy == "lfu":
                        victim = min(order, key=lambda k: (freq[k], last_use[k]))
                    else:
                        victim = next(iter(order))
                    del order[victim]
                    used -= int(sizes[victim])
                    evictions[r] += 1
            order[o] = None
            used += size
            stamp[o] = t
            freq[o] = 1
            last_use[o] = counter
    return hit, evictions, expirations
