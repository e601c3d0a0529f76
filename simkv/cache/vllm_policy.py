"""The engine-faithful ``vllm`` policy: vLLM v1's prefix cache, block by block.

vLLM's prefix cache is not plain LRU.  Read from vLLM 0.32 (``vllm/v1/core/block_pool.py``,
``kv_cache_manager.py``, ``single_type_kv_cache_manager.py``), for a full-attention model:

- a fixed pool of physical blocks; free blocks sit in one queue (``FreeKVCacheBlockQueue``);
  allocation pops from its head, and popping a block that still carries a hash evicts it;
- lookup: the leading run of cached *full* blocks, capped at ``num_tokens - 1`` tokens (a fully
  cached prompt still recomputes its last token, and with it a whole block);
- hit blocks are touched (taken out of the free queue: pinned while the request runs); the rest
  of the request's blocks are allocated fresh, ``cdiv(prompt + output - 1, block)`` in all, since
  the last generated token is never fed back;
- every block that becomes full is cached, including blocks filled by generated tokens (their
  hashes never match a later prompt, but they take room); a full block whose hash is already
  cached is cached again (duplicates are allowed; lookups take the first);
- a finished request frees its blocks in reverse order (tail first); cached blocks are appended
  to the queue's tail in that order (so the prefix is evicted last), never-cached blocks (the
  prompt's last partial block) are prepended to its head and reused first.

``VllmBlockPool`` replays those rules one request at a time (``run_request``: requests do not
overlap); its reference-counted primitives (``touch`` / ``allocate`` / ``cache`` / ``release``)
let :mod:`simkv.cache.vllm_sched` run vLLM's scheduler over it when requests overlap (blocks
pinned by several requests, chunked prefills, deferral, preemption).  ``LMCacheLRU`` models LMCache's level
(multi-process mode): 256-token chunks, prefix-chained, LRU, ``save_unfull_chunk`` off; its
lookup result supersedes vLLM's own hit by ``max(0, lmcache_hit - local_hit)`` tokens, which
vLLM counts as external hits.  LMCache evicts in batches past a watermark; this evicts exactly
one LRU chunk at a time (documented difference).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass

import numpy as np

from simkv.cache.config import CacheConfig
from simkv.cache.policies import POLICIES, KernelOutput
from simkv.cache.statemachine import LruTtl, SlotOrder
from simkv.cache.stream import AccessStream
from simkv.errors import InputError
from simkv.trace.model import Trace


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class RequestOutcome:
    """What one request got: leading hit blocks, fresh blocks allocated, evictions."""

    hit_blocks: int
    allocated_blocks: int
    evictions: int


class FreeBlockQueue:
    """vLLM's ``FreeKVCacheBlockQueue`` on the cache state machine's slot order (block ``b`` is
    slot ``b + 1``): pop from the head, append to the tail, prepend to the head, take blocks
    out.  Each operation takes a request's whole list of blocks in one compiled call."""

    def __init__(self, num_blocks: int) -> None:
        self.order = SlotOrder(num_blocks)
        self.order.fill(1, num_blocks + 1)

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[int]:
        return (slot - 1 for slot in self.order)

    @staticmethod
    def _slots(blocks: list[int]) -> np.ndarray:
        return np.asarray(blocks, dtype=np.int64) + 1

    def pop_heads(self, k: int) -> list[int]:
        """Up to ``k`` blocks from the head, in order."""
        if k <= 0:
            return []
        return (self.order.pop_many(k) - 1).tolist()

    def take(self, blocks: list[int]) -> None:
        """Take the blocks that are queued out of the queue (hits are pinned while running)."""
        if blocks:
            self.order.take_many(self._slots(blocks))

    def append(self, blocks: list[int]) -> None:
        """Free blocks to the tail in order (a block already queued keeps its place)."""
        if blocks:
            self.order.put_many(self._slots(blocks), at_lru=False)

    def prepend(self, blocks: list[int]) -> None:
        """Put each block in turn at the head (so the last one is reused first)."""
        if blocks:
            self.order.put_many(self._slots(blocks), at_lru=True)


class VllmBlockPool:
    """vLLM v1's block pool and prefix cache for one full-attention KV cache group.

    ``num_blocks`` counts usable blocks (vLLM's ``num_gpu_blocks`` minus its null block);
    ``None`` is unlimited.  Block keys are any hashable ids of the prompt's chained blocks.
    """

    def __init__(self, num_blocks: int | None, block_tokens: int) -> None:
        if block_tokens <= 0:
            raise ValueError("block_tokens must be > 0")
        self.block_tokens = block_tokens
        self.unlimited = num_blocks is None
        self.num_blocks = num_blocks
        self.free = FreeBlockQueue(num_blocks or 0)
        self.next_block = num_blocks or 0
        self.block_key: dict[int, object] = {}            # physical block -> its hash key
        self.cached: dict[object, list[int]] = {}         # hash key -> physical blocks, oldest first
        self._unique = 0
        self.ref: dict[int, int] = {}                     # held block -> requests holding it

    # ------------------------------------------------------------------ primitives
    def _allocate(self, k: int) -> tuple[list[int], int]:
        """``k`` fresh physical blocks from the queue head (then new ones when unlimited), and
        how many of them evicted a cached block."""
        blocks = self.free.pop_heads(k)
        evictions = 0
        for block in blocks:
            key = self.block_key.pop(block, None)
            if key is None:
                continue
            evictions += 1
            holders = self.cached[key]
            holders.remove(block)
            if not holders:
                del self.cached[key]
        if len(blocks) < k:
            if not self.unlimited:
                raise RuntimeError("no free KV block: a request larger than the whole cache")
            extra = k - len(blocks)
            blocks += range(self.next_block, self.next_block + extra)
            self.next_block += extra
            self.free.order.reserve(self.next_block)  # block b is slot b + 1
        return blocks, evictions

    def _cache(self, block: int, key: object) -> None:
        self.block_key[block] = key
        self.cached.setdefault(key, []).append(block)

    def lookup(self, keys, prompt_tokens: int) -> int:
        """Leading cached full blocks, capped at ``prompt_tokens - 1`` tokens."""
        limit = max(prompt_tokens - 1, 0) // self.block_tokens
        n = 0
        for key in keys[:limit]:
            if key not in self.cached:
                break
            n += 1
        return n

    # ------------------------------------------------------------------ shared blocks
    # Reference-counted primitives for requests that overlap (the step-level scheduler in
    # ``simkv.cache.vllm_sched``); ``run_request`` below is the one-at-a-time special case.
    def hit_blocks(self, keys, num_tokens: int) -> list[int]:
        """The physical blocks of the leading cached full blocks (first holder of each)."""
        return [self.cached[keys[k]][0] for k in range(self.lookup(keys, num_tokens))]

    def num_free(self) -> int:
        """Blocks an allocation may take now (vLLM's ``get_num_free_blocks``)."""
        return 1 << 60 if self.unlimited else len(self.free)

    def evictable(self, blocks: list[int]) -> int:
        """How many of ``blocks`` sit in the free queue (touching them takes free room)."""
        return sum(1 for b in blocks if self.ref.get(b, 0) == 0)

    def touch(self, blocks: list[int]) -> None:
        """``BlockPool.touch``: a block nobody holds leaves the free queue; ref count + 1."""
        self.free.take([b for b in blocks if self.ref.get(b, 0) == 0])
        for b in blocks:
            self.ref[b] = self.ref.get(b, 0) + 1

    def allocate(self, k: int) -> tuple[list[int], int]:
        """``k`` fresh blocks held once (and how many evicted a cached block)."""
        blocks, evictions = self._allocate(k)
        for b in blocks:
            self.ref[b] = 1
        return blocks, evictions

    def cache(self, block: int, key: object) -> None:
        """A block became full: it joins the prefix cache under ``key``."""
        self._cache(block, key)

    def release(self, blocks: list[int]) -> None:
        """``BlockPool.free_blocks`` of a request's blocks (tail first, as vLLM frees):
        blocks nobody holds any more go back, uncached ones to the head, cached ones to the
        tail, both in the given order."""
        first, last = [], []
        for b in reversed(blocks):
            self.ref[b] -= 1
            if self.ref[b] == 0:
                del self.ref[b]
                (last if b in self.block_key else first).append(b)
        self.free.prepend(first[::-1])
        self.free.append(last)

    # ------------------------------------------------------------------ one request
    def run_request(self, keys, prompt_tokens: int, output_tokens: int,
                    computed_tokens: int | None = None) -> RequestOutcome:
        """Serve one request start to finish; ``keys`` are its prompt's chained block ids.

        ``computed_tokens`` overrides the leading tokens not recomputed (local + external hits);
        by default the local hit.
        """
        bt = self.block_tokens
        hit = self.lookup(keys, prompt_tokens)
        blocks = [self.cached[keys[k]][0] for k in range(hit)]
        self.free.take(blocks)                             # touch: pin while running
        held_tokens = max(prompt_tokens + max(output_tokens, 1) - 1, prompt_tokens)
        total = _cdiv(held_tokens, bt)
        fresh, evictions = self._allocate(total - hit)
        blocks += fresh
        n_full_prompt = prompt_tokens // bt
        n_full = held_tokens // bt
        for k in range(hit, n_full):                       # cache blocks as they fill
            if k < n_full_prompt:
                self._cache(blocks[k], keys[k])
            else:                                          # filled by generated tokens
                self._unique += 1
                self._cache(blocks[k], ("gen", self._unique))
        evict_first, evict_last = [], []
        for b in reversed(blocks):                         # free tail first
            (evict_last if b in self.block_key else evict_first).append(b)
        self.free.prepend(evict_first[::-1])               # prepend_n keeps list order at head
        self.free.append(evict_last)
        return RequestOutcome(hit, total - hit, evictions)


class LMCacheLRU:
    """LMCache's store in multi-process mode: full chunks, prefix-chained, LRU by chunk (the
    cache state machine with unit sizes)."""

    def __init__(self, capacity_chunks: int | None, chunk_tokens: int = 256) -> None:
        self.capacity = capacity_chunks
        self.chunk_tokens = chunk_tokens
        self.lru = LruTtl()
        self.evictions = 0

    def lookup(self, keys, prompt_tokens: int) -> int:
        """Leading stored chunks of the prompt (touched, as LMCache's lookup locks them)."""
        n_full = prompt_tokens // self.chunk_tokens
        n = 0
        for key in keys[:n_full]:
            if key not in self.lru:
                break
            self.lru.touch_key(key, 0.0)
            n += 1
        return n

    def store(self, keys: list[Hashable], first: int, last: int) -> None:
        """Store chunks ``first..last-1`` (most recently used)."""
        for key in keys[first:last]:
            if key in self.lru:
                self.lru.touch_key(key, 0.0)
                continue
            if self.capacity is not None:
                if self.capacity <= 0:
                    return
                while len(self.lru) >= self.capacity:
                    self.lru.drop(self.lru.lru_key())
                    self.evictions += 1
            self.lru.insert(key, 1, 0, 0.0)


@dataclass(frozen=True)
class TieredPrediction:
    """Per-request hit tokens by vLLM's rules: local prefix cache and LMCache (external)."""

    prompt_tokens: np.ndarray
    local_hit_tokens: np.ndarray
    external_hit_tokens: np.ndarray
    evictions: np.ndarray

    def summary(self) -> dict:
        p = int(self.prompt_tokens.sum())
        local = int(self.local_hit_tokens.sum())
        ext = int(self.external_hit_tokens.sum())
        ext_queries = p - local
        return {"prompt_tokens": p, "local_hit_tokens": local, "external_hit_tokens": ext,
                "prefix_hit_ratio": local / p if p else 0.0,
                "external_queries_tokens": ext_queries,
                "external_hit_ratio": ext / ext_queries if ext_queries else 0.0,
                "evictions": int(self.evictions.sum())}


def simulate_tiers(block_keys: list, prompt_tokens, output_tokens, *, num_blocks: int | None,
                   block_tokens: int, chunk_keys: list | None = None,
                   lmcache_chunks: int | None = None, chunk_tokens: int = 256) -> TieredPrediction:
    """vLLM's prefix cache (and LMCache behind it when ``chunk_keys`` is given), request by
    request in the given order.

    ``block_keys[i]`` / ``chunk_keys[i]``: request i's chained ids at vLLM's block size and at
    LMCache's chunk size.
    """
    n = len(block_keys)
    pool = VllmBlockPool(num_blocks, block_tokens)
    lmc = LMCacheLRU(lmcache_chunks, chunk_tokens) if chunk_keys is not None else None
    local = np.zeros(n, dtype=np.int64)
    ext = np.zeros(n, dtype=np.int64)
    evictions = np.zeros(n, dtype=np.int64)
    prompt = np.asarray(prompt_tokens, dtype=np.int64)
    for i in range(n):
        p, o = int(prompt[i]), int(output_tokens[i])
        hit_local = pool.lookup(block_keys[i], p) * block_tokens
        if lmc is not None:
            lmc_hit = lmc.lookup(chunk_keys[i], p)
            ext[i] = max(0, lmc_hit * chunk_tokens - hit_local)
            # the connector stores the full chunks it does not already hold
            lmc.store(chunk_keys[i], lmc_hit, p // chunk_tokens)
        out = pool.run_request(block_keys[i], p, o)
        local[i] = out.hit_blocks * block_tokens
        evictions[i] = out.evictions
    return TieredPrediction(prompt, local, ext, evictions)


@POLICIES.register("vllm")
def _vllm(cfg: CacheConfig, capacity: int):
    """vLLM v1's prefix cache (see the module docstring); capacity counts usable blocks.

    One pool serves every chunk of the stream; with a capacity in bytes the block size is
    fixed by the first chunk's blocks, and a later block of another size is refused.
    """
    if cfg.ttl_s is not None:
        raise InputError("the vllm policy has no TTL (vLLM keeps blocks until evicted)",
                         where="ttl")
    if cfg.reuse != "prefix":
        raise InputError("the vllm policy models prefix reuse only", where="reuse")
    pools: list[tuple[VllmBlockPool, int | None, int]] = []

    def run(trace: Trace, stream: AccessStream) -> KernelOutput:
        num_blocks: int | None
        sizes = np.unique(stream.sizes)
        if capacity >= 0 and cfg.capacity_bytes is not None and (
                len(sizes) > 1 or (pools and len(sizes) and int(sizes[0]) != pools[0][2])):
            raise InputError("the vllm policy needs one block size in bytes (one model per "
                             "cache); give the capacity in blocks", where="capacity")
        if not pools:
            if capacity < 0:
                num_blocks = None
            elif cfg.capacity_bytes is not None:
                num_blocks = int(capacity // int(sizes[0])) if len(sizes) else 0
            else:
                num_blocks = int(capacity)
            pools.append((VllmBlockPool(num_blocks, trace.block_tokens), num_blocks,
                          int(sizes[0]) if len(sizes) else 1))
        pool, num_blocks, _ = pools[0]
        return _vllm_chunk(pool, num_blocks, trace, stream)

    return run


def _vllm_chunk(pool: VllmBlockPool, num_blocks: int | None, trace: Trace,
                stream: AccessStream) -> KernelOutput:
    """One chunk of requests through the pool, one request at a time."""
    n = trace.n_requests
    hit = np.zeros(len(stream.ids), dtype=np.uint8)
    evictions = np.zeros(n, dtype=np.int64)
    hit_tokens = np.zeros(n, dtype=np.int64)
    offsets = stream.req_offsets
    ids = stream.ids.tolist()
    bt = trace.block_tokens
    for i in range(n):
        a, b = int(offsets[i]), int(offsets[i + 1])
        p, o = int(trace.input_tokens[i]), int(trace.output_tokens[i])
        if p == 0:
            continue  # nothing sent (a request the harness skipped)
        if num_blocks is not None and _cdiv(max(p + max(o, 1) - 1, p), bt) > num_blocks:
            continue  # vLLM refuses a request larger than its whole cache
        out = pool.run_request(ids[a:b], p, o)
        hit[a:a + out.hit_blocks] = 1
        evictions[i] = out.evictions
        hit_tokens[i] = out.hit_blocks * bt
    return KernelOutput(hit, evictions, np.zeros(n, dtype=np.int64), prefix_hit_tokens=hit_tokens)
