"""A KV store sharded across nodes (``simkv simulate --store-shards K``), exactly.

Distributed stores (Mooncake Store, LMCache P2P / remote, Redis Cluster) place each block on
one node by its key.  The model: ``K`` independent caches, node ``k`` holding the blocks whose
spatial hash falls in shard ``k`` (``simkv.trace.partition``), each with capacity ``C // K``
(the first ``C % K`` nodes one unit more, so the nodes add up to ``C``), the same policy and
TTL, and fed only its own blocks' accesses, in arrival order.  Per request:

- block hits are the sum of each node's hits;
- the prefix hit ends at the earliest first miss on any node (a node knows the positions of
  its blocks in the request's chain), so it is the leading run of the recombined hit flags.

A node hears only of the requests that touch it, so it expires entries at those arrivals:
expirations are counted on the first request after the entry's TTL ran out *that the node
sees* (hits are unaffected; only where an expiration is booked can differ from one cache).
Each task reads only its shard's dataset; the driver reads the per-request table and adds up.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from simkv.cache.config import CacheConfig
from simkv.cache.policies import POLICIES
from simkv.cache.stream import AccessStream, densify
from simkv.errors import InputError
from simkv.models.geometry import get_model
from simkv.trace.shardset import Partition, ShardData, open_partition, read_requests, read_shard

#: policies a store node can run: they act on the keys alone (``vllm`` is the engine's own
#: GPU block pool, not a store node's)
STORE_POLICIES = ("lru", "fifo", "lfu")


@dataclass(frozen=True)
class ShardOutcome:
    """What one node reports: per request it saw, hit blocks and the first missed position."""

    shard: int
    requests: np.ndarray     # int64 request indices (ascending)
    hit_blocks: np.ndarray   # int64
    first_miss: np.ndarray   # int64 position of the first miss, or the request's block count
    evictions: np.ndarray    # int64
    expirations: np.ndarray  # int64
    accesses: int
    unique_blocks: int
    capacity: int            # in the node's units (-1 unlimited)


def node_capacity(total: int | None, k: int, shards: int) -> int | None:
    """Node ``k``'s share of ``total`` (None: unlimited): ``total // K``, remainder to the first."""
    if total is None:
        return None
    return total // shards + (1 if k < total % shards else 0)


def node_config(cfg: CacheConfig, k: int, shards: int) -> CacheConfig:
    return replace(cfg, capacity_bytes=node_capacity(cfg.capacity_bytes, k, shards),
                   capacity_blocks=node_capacity(cfg.capacity_blocks, k, shards))


def check_store_config(cfg: CacheConfig) -> None:
    if cfg.policy not in STORE_POLICIES:
        raise InputError(f"a store node runs {', '.join(STORE_POLICIES)}, not {cfg.policy!r}",
                         where="--policy")
    if cfg.reuse != "prefix":
        raise InputError("store shards are keyed by the chained block hash: prefix reuse only",
                         where="--reuse")


def block_bytes_by_model(part: Partition, model: str | None) -> np.ndarray:
    """Bytes of one block per model index (``model`` replaces the trace's own, as simulate does)."""
    names = (model,) if model is not None else part.models
    if not names:
        raise InputError("the trace names no model, so capacity in bytes is undefined: give "
                         "--model NAME (or count capacity in blocks)", where="--model")
    if model is not None and len(set(part.models)) > 1:
        raise InputError("this trace names several models; each request's own model is used, so "
                         "--model is refused", where="--model")
    return np.array([get_model(m).block_bytes(part.block_tokens) for m in names], dtype=np.int64)


def node_stream(part: Partition, data: ShardData, by_bytes: bool, model: str | None) -> AccessStream:
    """Node ``k``'s access stream: dense ids of its blocks, each weighing 1 or its bytes."""
    ids, n_obj = densify(data.hashes)
    sizes = np.ones(n_obj, dtype=np.int64)
    if by_bytes and len(ids):
        per_model = block_bytes_by_model(part, model)
        midx = np.zeros(len(data.requests), dtype=np.int64) if model is not None else \
            data.model_index.astype(np.int64)
        weights = np.repeat(per_model[midx], np.diff(data.offsets))
        sizes = np.zeros(n_obj, dtype=np.int64)
        sizes[ids[::-1]] = weights[::-1]  # an object weighs what its first access weighs
    return AccessStream(ids=ids, n_objects=n_obj, sizes=sizes, req_offsets=data.offsets,
                        req_time_s=data.arrival_s)


def node_outcome(k: int, data: ShardData, stream: AccessStream, cfg: CacheConfig) -> ShardOutcome:
    """Node ``k`` running ``cfg`` (its own capacity) over its stream."""
    capacity = -1 if cfg.unlimited else int(cfg.capacity_blocks if cfg.by_blocks else cfg.capacity_bytes)
    # the store policies read the stream alone; a node has no whole-request Trace to give them
    out = POLICIES.get(cfg.policy, where="--policy")(cfg, capacity)(None, stream)
    hit = out.hit.astype(np.int64)
    if len(data.requests):
        starts = data.offsets[:-1]
        hits = np.add.reduceat(hit, starts)
        missed_at = np.where(hit == 0, data.positions, np.iinfo(np.int64).max)
        first_miss = np.minimum(np.minimum.reduceat(missed_at, starts), data.n_blocks)
    else:
        hits = first_miss = np.zeros(0, dtype=np.int64)
    return ShardOutcome(shard=k, requests=data.requests, hit_blocks=hits, first_miss=first_miss,
                        evictions=np.asarray(out.evictions, dtype=np.int64),
                        expirations=np.asarray(out.expirations, dtype=np.int64),
                        accesses=len(stream.ids), unique_blocks=int(stream.n_objects),
                        capacity=capacity)


def run_shard(folder: str, k: int, cfg: CacheConfig, model: str | None) -> ShardOutcome:
    """Node ``k``: its policy over its own shard's dataset (``cfg`` holds the node's capacity)."""
    part = open_partition(folder)
    data = read_shard(part, k)
    return node_outcome(k, data, node_stream(part, data, cfg.capacity_bytes is not None, model), cfg)


def combine(n_blocks: np.ndarray, outcomes: list[ShardOutcome]) -> dict[str, np.ndarray]:
    """Per request of the whole trace: hit blocks, prefix-hit blocks, evictions, expirations."""
    n = len(n_blocks)
    out = {"hit_blocks": np.zeros(n, dtype=np.int64), "prefix_hit_blocks": n_blocks.astype(np.int64),
           "evictions": np.zeros(n, dtype=np.int64), "expirations": np.zeros(n, dtype=np.int64)}
    for o in outcomes:
        out["hit_blocks"] += np.bincount(o.requests, weights=o.hit_blocks, minlength=n).astype(np.int64)
        out["evictions"] += np.bincount(o.requests, weights=o.evictions, minlength=n).astype(np.int64)
        out["expirations"] += np.bincount(o.requests, weights=o.expirations, minlength=n).astype(np.int64)
        np.minimum.at(out["prefix_hit_blocks"], o.requests, o.first_miss)
    return out


def simulate_store_shards(folder, cfg: CacheConfig, *, model: str | None = None,
                          executor: str = "local", address: str | None = None):
    """Simulate the sharded store over a partition folder; returns a ``SimResult``."""
    from simkv.cache.engine import SimResult
    from simkv.sizing.executor import map_tasks

    check_store_config(cfg)
    part = open_partition(folder)
    if cfg.capacity_bytes is not None:
        block_bytes_by_model(part, model)  # a missing model fails here, before any task starts
    items = [(str(part.folder), k, node_config(cfg, k, part.shards), model)
             for k in range(part.shards)]
    outcomes = map_tasks(run_shard, items, executor=executor, address=address)
    req = read_requests(part)
    n_blocks = -(-req["input_tokens"] // part.block_tokens)
    per = combine(n_blocks, outcomes)
    lead = per["prefix_hit_blocks"]
    lead_tokens = np.where(lead == n_blocks, req["input_tokens"], lead * part.block_tokens)
    names = (model,) if model is not None else part.models
    midx = np.zeros(part.n_requests, dtype=np.int64) if model is not None else \
        req["model_index"].astype(np.int64)
    records = pd.DataFrame({
        "request": np.arange(part.n_requests, dtype=np.int64), "arrival_s": req["arrival_s"],
        "session_id": req["session_id"], "tenant_id": req["tenant_id"],
        "model": np.array(tuple(names) + ("",), dtype=object)[midx],
        "input_tokens": req["input_tokens"], "output_tokens": req["output_tokens"],
        "blocks": n_blocks, "hit_blocks": per["hit_blocks"], "prefix_hit_blocks": lead,
        "prefix_hit_tokens": lead_tokens.astype(np.int64),
        "chunk_hit_tokens": lead_tokens.astype(np.int64),
        "blend_recompute_tokens": np.zeros(part.n_requests, dtype=np.int64),
        "reused_tokens": lead_tokens.astype(np.int64),
        "missed_tokens": (req["input_tokens"] - lead_tokens).astype(np.int64),
        "evictions": per["evictions"], "expirations": per["expirations"],
    })
    summary = summarize(part, cfg, records, outcomes)
    hit = np.zeros(0, dtype=np.uint8)  # per-access flags stay on the nodes
    return SimResult(config=cfg, records=records, summary_dict=summary, hit=hit)


def summarize(part: Partition, cfg: CacheConfig, records: pd.DataFrame,
              outcomes: list[ShardOutcome]) -> dict:
    """The summary ``simulate`` prints, plus the store's shape and per-node hit ratios."""
    accesses = int(sum(o.accesses for o in outcomes))
    hits = int(records["hit_blocks"].sum())
    inp = int(records["input_tokens"].sum())
    lead = int(records["prefix_hit_tokens"].sum())
    node_ratios = [float(o.hit_blocks.sum() / o.accesses) if o.accesses else 0.0 for o in outcomes]
    return {
        "requests": part.n_requests, "input_tokens": inp, "block_accesses": accesses,
        "unique_blocks": int(sum(o.unique_blocks for o in outcomes)),
        "block_hit_ratio": hits / accesses if accesses else 0.0,
        "prefix_hit_tokens": lead, "prefix_token_hit_ratio": lead / inp if inp else 0.0,
        "reused_tokens": lead, "token_reuse_ratio": lead / inp if inp else 0.0,
        "evictions": int(records["evictions"].sum()),
        "expirations": int(records["expirations"].sum()),
        "policy": cfg.policy, "capacity_bytes": cfg.capacity_bytes,
        "capacity_blocks": cfg.capacity_blocks, "ttl_s": cfg.ttl_s, "ttl_mode": cfg.ttl_mode,
        "reuse": cfg.reuse, "block_tokens": part.block_tokens, "store_shards": part.shards,
        "node_block_hit_ratio_min": min(node_ratios), "node_block_hit_ratio_max": max(node_ratios),
    }


@contextlib.contextmanager
def partition_for(trace_path, shards: int | None, *, format: str | None = None,
                  chunk_requests: int | None = None) -> Iterator[Path]:
    """The partition folder for ``--store-shards``: ``trace_path`` itself when it is one (its
    shard count must match ``shards`` if given), else the trace file partitioned into a
    temporary folder, removed afterwards.

    A multi-node Ray cluster needs the partition on storage every node sees: partition once
    with ``simkv trace partition`` onto it and pass that folder."""
    from simkv.trace.partition import DEFAULT_CHUNK_REQUESTS, partition_trace
    from simkv.trace.shardset import is_partition

    path = Path(trace_path)
    if shards is not None and (isinstance(shards, bool) or shards < 1):
        raise InputError(f"must be a whole number >= 1, got {shards!r}", where="--store-shards")
    if is_partition(path):
        part = open_partition(path)
        if shards is not None and shards != part.shards:
            raise InputError(f"the partition {path} has {part.shards} shards, not {shards}",
                             where="--store-shards")
        yield path
        return
    if shards is None:
        raise InputError("give the number of store shards", where="--store-shards")
    with tempfile.TemporaryDirectory(prefix="simkv-store-shards-") as tmp:
        folder = Path(tmp) / "partition"
        partition_trace(path, shards, folder, format=format, option="--store-shards",
                        chunk_requests=chunk_requests or DEFAULT_CHUNK_REQUESTS)
        yield folder


def simulate_store_shards_at(trace_path, cfg: CacheConfig, *, shards: int | None,
                             format: str | None = None, model: str | None = None,
                             executor: str = "local", address: str | None = None,
                             chunk_requests: int | None = None):
    """``simulate --store-shards``: a partition folder, or a trace file partitioned first."""
    from simkv.sizing.executor import check_executor, check_ray_address

    check_store_config(cfg)
    if check_executor(executor) == "ray":
        address = check_ray_address(address)  # before any partitioning work
    with partition_for(trace_path, shards, format=format, chunk_requests=chunk_requests) as folder:
        return simulate_store_shards(folder, cfg, model=model, executor=executor, address=address)
