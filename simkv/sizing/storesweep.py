"""``simkv sweep --store-shards K``: the capacity x TTL grid of a store sharded over K nodes.

The one-pass grid (``simkv.sizing.grid``) cannot be split by node: a request's prefix hit at a
point depends on the earliest first miss over all nodes *at that point*.  So each node task
reads its shard once and runs its policy once per grid point (capacity ``C // K`` plus the
remainder rule of ``storeshards.node_capacity``; the TTL as given), reporting per point its
block hits and, per request it saw, the position of its first miss (int32).  The driver takes
the minimum over nodes per request and point.  Exact for the store model, at the price of one
kernel pass per point per node; the columns are those of ``lru_grid``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from simkv.cache.config import CacheConfig
from simkv.errors import InputError
from simkv.sizing.storeshards import (
    block_bytes_by_model,
    check_store_config,
    node_config,
    node_outcome,
    node_stream,
)
from simkv.trace.shardset import open_partition, read_requests, read_shard


def _points(capacities: list, ttls_s: list) -> list[tuple]:
    return [(c, t) for c in capacities for t in ttls_s]


def node_grid(folder: str, k: int, base: CacheConfig, unit: str, model: str | None,
              capacities: list, ttls_s: list) -> tuple[np.ndarray, np.ndarray, list]:
    """Node ``k`` at every point: (request indices, block hits per point, first misses per point)."""
    part = open_partition(folder)
    data = read_shard(part, k)
    stream = node_stream(part, data, unit == "bytes", model)
    hits, firsts = [], []
    for cap, ttl in _points(capacities, ttls_s):
        cfg = replace(base, ttl_s=ttl, capacity_blocks=cap if unit == "blocks" else None,
                      capacity_bytes=cap if unit == "bytes" else None)
        out = node_outcome(k, data, stream, node_config(cfg, k, part.shards))
        hits.append(int(out.hit_blocks.sum()))
        firsts.append(out.first_miss.astype(np.int32))
    return data.requests, np.array(hits, dtype=np.int64), firsts


def store_grid(folder, *, capacities_blocks=None, capacities_bytes=None, ttls_s=(None,),
               policy: str = "lru", model: str | None = None, executor: str = "local",
               address: str | None = None) -> pd.DataFrame:
    """One row per (capacity, TTL) of the whole store, capacity-major, in the order given."""
    from simkv.sizing.executor import map_tasks

    if (capacities_blocks is None) == (capacities_bytes is None):
        raise InputError("give capacities in blocks or in bytes (exactly one)", where="capacities")
    unit = "blocks" if capacities_blocks is not None else "bytes"
    capacities = list(capacities_blocks if capacities_blocks is not None else capacities_bytes)
    ttls_s = list(ttls_s)
    base = CacheConfig(policy=policy)
    check_store_config(base)
    for c, t in _points(capacities, ttls_s):  # every point valid before any task starts
        CacheConfig(capacity_blocks=c if unit == "blocks" else None,
                    capacity_bytes=c if unit == "bytes" else None, ttl_s=t, policy=policy)
    part = open_partition(folder)
    if unit == "bytes":
        block_bytes_by_model(part, model)
    items = [(str(part.folder), k, base, unit, model, capacities, ttls_s) for k in range(part.shards)]
    results = map_tasks(node_grid, items, executor=executor, address=address)
    req = read_requests(part)
    n_blocks = -(-req["input_tokens"] // part.block_tokens)
    n_points = len(capacities) * len(ttls_s)
    hits = np.sum([r[1] for r in results], axis=0) if results else np.zeros(n_points, np.int64)
    lead_tokens = np.zeros(n_points, dtype=np.int64)
    for p in range(n_points):
        lead = n_blocks.copy()
        for requests, _, firsts in results:
            np.minimum.at(lead, requests, firsts[p].astype(np.int64))
        lead_tokens[p] = int(np.where(lead == n_blocks, req["input_tokens"],
                                      lead * part.block_tokens).sum())
    accesses, tokens = int(n_blocks.sum()), int(req["input_tokens"].sum())
    pts = _points(capacities, ttls_s)
    cap_col = "capacity_blocks" if unit == "blocks" else "capacity_bytes"
    return pd.DataFrame({
        cap_col: pd.array([c for c, _ in pts], dtype="Int64"),
        "ttl_s": pd.array([t for _, t in pts], dtype="Float64"),
        "block_hit_ratio": hits / accesses if accesses else np.zeros(n_points),
        "prefix_token_hit_ratio": lead_tokens / tokens if tokens else np.zeros(n_points),
        "hit_blocks": hits, "prefix_hit_tokens": lead_tokens,
        "block_accesses": np.full(n_points, accesses, dtype=np.int64),
        "input_tokens": np.full(n_points, tokens, dtype=np.int64),
        "store_shards": np.full(n_points, part.shards, dtype=np.int64),
    })
