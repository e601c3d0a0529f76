"""LMCache's L1 (multi-process server, LMCache 0.5.6) as the engine really runs it.

Read from ``lmcache/v1/distributed/`` (``storage_controllers/eviction_controller.py``,
``eviction_policy/lru.py``, ``l1_manager.py``, ``storage_manager.py``):

- the store holds *full* chunks (``chunk_tokens``, 256 by default), prefix-chained; its
  capacity is a byte slab (``--l1-size-gb`` x 2^30) cut into equal chunk objects, so it holds
  ``floor(l1_bytes / chunk_bytes)`` chunks;
- a store reserves every chunk it does not already hold in *one* allocation: when the free
  room is smaller than that, the whole batch fails (OUT_OF_MEMORY) and nothing of that request
  is stored.  Nothing is evicted on a store;
- eviction happens only on a background loop that wakes once a second: when usage is at or
  above ``trigger_watermark`` (0.8) it deletes ``int(eviction_ratio x tracked keys)`` (0.2,
  at least one) keys in LRU order.  Its metrics are ``l1_eviction_loop_ticks`` (every wake) and
  ``l1_eviction_loop_triggered`` (wakes that evicted);
- the LRU order: keys a store creates, and at the end of each request (``end_session``, from
  ``multiprocess/modules/lookup.py``) every stored chunk of its prompt, are moved to the most
  recent end in *reverse* order, so a request's first chunk is the most recent and its tail is
  evicted first (a prefix stays usable);
- a lookup is a prefetch (``storage_controllers/prefetch_controller.py``, ``_finish_request``):
  it read-locks the chunks it finds, keeps the leading run (the hit) and touches those, so a
  lookup's hit chunks also become the most recent, in the same reverse order, when the lookup
  is made, not only at the request's end.  Between a lookup and its request's end the loop
  can wake (a request on this CPU engine takes 0.1-0.5 s), and then the hit is not among the
  first keys it deletes: without this touch the model deleted a prefix the server kept (one
  of four one-in-flight replays, 2026-12-02, docs/harness.md).

Time enters only through the loop's one-second wake: the caller gives each event's time (in a
user simulation, the request's arrival; in the harness, when the replay looked up, stored and
ended it), and the loop's wakes: ``tick_phase_s + k x tick_s`` by default, or the wake times a
harness watched (``wakes_s``; a loaded machine delays them).
``LMCacheL1`` is these rules over the cache state machine (``simkv.cache.statemachine``); the
``lmcache`` policy runs it over a trace whose blocks are
the chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simkv.cache.config import CacheConfig
from simkv.cache.policies import POLICIES, KernelOutput
from simkv.cache.statemachine import LruTtl
from simkv.cache.stream import AccessStream
from simkv.errors import InputError
from simkv.trace.model import Trace

#: LMCache 0.5.6 defaults (``lmcache/v1/distributed/config.py`` EvictionConfig, CLI flags)
DEFAULT_TRIGGER_WATERMARK = 0.8
DEFAULT_EVICTION_RATIO = 0.2
DEFAULT_TICK_S = 1.0
GIB = 1 << 30


@dataclass(frozen=True)
class L1Config:
    """The L1 store's settings in the server's own units (chunks of ``chunk_tokens``)."""

    capacity_chunks: int | None
    chunk_tokens: int = 256
    trigger_watermark: float = DEFAULT_TRIGGER_WATERMARK
    eviction_ratio: float = DEFAULT_EVICTION_RATIO
    tick_s: float = DEFAULT_TICK_S
    tick_phase_s: float = 0.0
    #: the slab in chunk units (``l1_bytes / chunk_bytes``, not rounded): usage is used bytes
    #: over the slab's bytes; ``None``: ``capacity_chunks``
    slab_chunks: float | None = None
    #: the loop's wake times when known (a harness watched them); else phase + k x tick
    wakes_s: tuple[float, ...] | None = None

    @classmethod
    def from_bytes(cls, l1_bytes: int, chunk_bytes: int, chunk_tokens: int = 256,
                   **kw) -> L1Config:
        """The L1 of a server started with ``l1_bytes`` (``--l1-size-gb`` x 2^30)."""
        return cls(capacity_chunks(l1_bytes, chunk_bytes), chunk_tokens,
                   slab_chunks=l1_bytes / chunk_bytes, **kw)

    def __post_init__(self) -> None:
        if self.chunk_tokens <= 0:
            raise InputError("must be > 0", where="chunk_tokens")
        if self.capacity_chunks is not None and self.capacity_chunks < 0:
            raise InputError("must be >= 0", where="capacity_chunks")
        if not 0.0 <= self.trigger_watermark <= 1.0 or not 0.0 <= self.eviction_ratio <= 1.0:
            raise InputError("watermark and ratio lie within [0, 1]", where="eviction")
        if self.tick_s <= 0:
            raise InputError("must be > 0", where="tick_s")


def capacity_chunks(l1_bytes: int, chunk_bytes: int) -> int:
    """Chunks an L1 slab of ``l1_bytes`` holds (equal objects, no fragmentation)."""
    if chunk_bytes <= 0:
        raise InputError("must be > 0", where="chunk_bytes")
    return int(l1_bytes) // int(chunk_bytes)


@dataclass
class L1Counters:
    ticks: int = 0
    triggered: int = 0
    evicted_chunks: int = 0
    failed_stores: int = 0
    stored_chunks: int = 0


@dataclass
class LMCacheL1:
    """The L1 store: lookup, all-or-nothing store, and the one-second eviction loop."""

    config: L1Config
    order: LruTtl = field(default_factory=LruTtl)  # the cache state machine, LRU first
    counters: L1Counters = field(default_factory=L1Counters)
    _next_tick_s: float | None = None

    def _touch(self, keys) -> None:
        for key in reversed(list(keys)):
            if key in self.order:
                self.order.touch_key(key, 0.0)
            else:
                self.order.insert(key, 1, 0, 0.0)

    def advance(self, now_s: float) -> None:
        """Run every loop wake due up to ``now_s`` (at phase + k x tick, or the given wakes)."""
        c = self.config
        if c.wakes_s is not None:
            done = self.counters.ticks
            while done < len(c.wakes_s) and c.wakes_s[done] <= now_s:
                self._tick()
                done += 1
            return
        if self._next_tick_s is None:  # the loop ran before; its first wake we see
            k = max(0.0, float(np.ceil((now_s - c.tick_phase_s) / c.tick_s)))
            self._next_tick_s = c.tick_phase_s + k * c.tick_s
        while self._next_tick_s <= now_s:
            self._tick()
            self._next_tick_s += c.tick_s

    def _tick(self) -> None:
        c = self.config
        self.counters.ticks += 1
        slab = c.slab_chunks if c.slab_chunks is not None else c.capacity_chunks
        if not slab:
            return
        if len(self.order) / slab < c.trigger_watermark:
            return
        target = int(len(self.order) * c.eviction_ratio)
        if c.eviction_ratio > 0 and target == 0 and self.order:
            target = 1
        for _ in range(min(target, len(self.order))):
            self.order.drop(self.order.lru_key())
        self.counters.triggered += 1
        self.counters.evicted_chunks += target

    def lookup(self, keys, prompt_tokens: int, now_s: float) -> int:
        """Leading stored full chunks of the prompt; they become the most recent (the
        prefetch touches its hit, reverse order: the first chunk last evicted)."""
        self.advance(now_s)
        n_full = prompt_tokens // self.config.chunk_tokens
        n = 0
        for key in keys[:n_full]:
            if key not in self.order:
                break
            n += 1
        self._touch(keys[:n])
        return n

    def finish(self, keys, prompt_tokens: int, now_s: float) -> None:
        """A request ended: its stored full chunks become the most recent (reverse order)."""
        self.advance(now_s)
        held = [k for k in keys[:prompt_tokens // self.config.chunk_tokens] if k in self.order]
        self._touch(held)

    def store(self, keys, first: int, last: int, now_s: float) -> bool:
        """Store chunks ``first..last-1`` in one allocation; False when it did not fit."""
        self.advance(now_s)
        batch = list(keys[first:last])
        new = [k for k in batch if k not in self.order]
        cap = self.config.capacity_chunks
        if cap is not None and new and len(self.order) + len(new) > cap:
            self.counters.failed_stores += 1
            return False
        self.counters.stored_chunks += len(new)
        self._touch(new)  # held keys are not writable: LMCache leaves them where they are
        return True


@POLICIES.register("lmcache")
def _lmcache(cfg: CacheConfig, capacity: int):
    """LMCache's L1 over a trace whose blocks are its chunks; wakes on the trace's clock.

    Capacity in chunks (``capacity_blocks``) or, as the server takes it, in bytes of slab
    (``capacity``; one chunk size in bytes, from the model); a prefix hit is the leading stored
    chunks.  One L1 serves every chunk of the stream (created with the first one).
    """
    if cfg.ttl_s is not None:
        raise InputError("the lmcache policy has no TTL (LMCache evicts by its loop)", where="ttl")
    if cfg.reuse != "prefix":
        raise InputError("the lmcache policy models prefix reuse only", where="reuse")
    caches: list[LMCacheL1] = []

    def run(trace: Trace, stream: AccessStream) -> KernelOutput:
        if not caches:
            caches.append(_new_l1(cfg, capacity, trace, stream))
        return _lmcache_chunk(caches[0], trace, stream)

    return run


def _new_l1(cfg: CacheConfig, capacity: int, trace: Trace, stream: AccessStream) -> LMCacheL1:
    """The L1 for a stream, sized from its first chunk (chunk bytes come from the model)."""
    if capacity < 0:
        return LMCacheL1(L1Config(None, trace.block_tokens))
    if cfg.capacity_bytes is not None:
        sizes = np.unique(stream.sizes)
        if len(sizes) != 1:
            raise InputError("the lmcache policy needs one chunk size in bytes (one model); "
                             "give the capacity in chunks", where="capacity")
        return LMCacheL1(L1Config.from_bytes(int(capacity), int(sizes[0]), trace.block_tokens))
    return LMCacheL1(L1Config(int(capacity), trace.block_tokens))


def _lmcache_chunk(l1: LMCacheL1, trace: Trace, stream: AccessStream) -> KernelOutput:
    """One chunk of requests through the L1, one request at a time."""
    n = trace.n_requests
    hit = np.zeros(len(stream.ids), dtype=np.uint8)
    hit_tokens = np.zeros(n, dtype=np.int64)
    evictions = np.zeros(n, dtype=np.int64)  # chunks the loop evicted before request i
    offsets = stream.req_offsets
    ids = stream.ids.tolist()
    bt = trace.block_tokens
    for i in range(n):
        a, b = int(offsets[i]), int(offsets[i + 1])
        p = int(trace.input_tokens[i])
        t = float(trace.arrival_s[i])
        keys = ids[a:b]
        before = l1.counters.evicted_chunks
        got = l1.lookup(keys, p, t)
        hit[a:a + got] = 1
        hit_tokens[i] = got * bt
        l1.store(keys, got, p // bt, t)
        l1.finish(keys, p, t)
        evictions[i] = l1.counters.evicted_chunks - before
    return KernelOutput(hit, evictions, np.zeros(n, dtype=np.int64), prefix_hit_tokens=hit_tokens)
