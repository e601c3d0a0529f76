"""Eviction policies, registered by name (``CacheConfig.policy`` / ``--policy``).

A policy is a factory ``make(cfg, capacity) -> run`` where ``capacity`` is in the stream's
size units (bytes or blocks; ``-1`` unlimited) and ``run(chunk, stream) -> KernelOutput`` is
called once per chunk of the trace, in order, carrying the cache's state from one call to the
next (``simkv.cache.carry``).  Adding a policy means registering one more factory here or in
its own module, never editing a switch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simkv.cache.carry import LfuState, ListState
from simkv.cache.config import CacheConfig
from simkv.cache.stream import AccessStream
from simkv.registry import Registry
from simkv.trace.model import Trace


@dataclass(frozen=True)
class KernelOutput:
    """Per-access hit flags and per-request counts; a policy may also fix prefix hit tokens
    (engine-faithful policies count hits by the engine's own rules)."""

    hit: np.ndarray
    evictions: np.ndarray
    expirations: np.ndarray
    prefix_hit_tokens: np.ndarray | None = None


ChunkRun = Callable[[Trace, AccessStream], KernelOutput]
PolicyFn = Callable[[CacheConfig, int], ChunkRun]
POLICIES: Registry[PolicyFn] = Registry("policy")


def _ttl(cfg: CacheConfig) -> float:
    return -1.0 if cfg.ttl_s is None else float(cfg.ttl_s)


def _runner(state: ListState | LfuState) -> ChunkRun:
    def run(chunk: Trace, stream: AccessStream) -> KernelOutput:
        return KernelOutput(*state.run(stream.ids, stream.sizes, stream.req_offsets,
                                       stream.req_time_s, stream.n_objects))
    return run


@POLICIES.register("lru")
def _lru(cfg: CacheConfig, capacity: int) -> ChunkRun:
    """Least recently used: a hit moves the block to the front; evict from the back."""
    return _runner(ListState(lru=True, ttl_s=_ttl(cfg), from_write=cfg.ttl_mode == "from_write",
                             capacity=capacity))


@POLICIES.register("fifo")
def _fifo(cfg: CacheConfig, capacity: int) -> ChunkRun:
    """First in, first out: hits do not reorder; evict the oldest insertion."""
    return _runner(ListState(lru=False, ttl_s=_ttl(cfg), from_write=cfg.ttl_mode == "from_write",
                             capacity=capacity))


@POLICIES.register("lfu")
def _lfu(cfg: CacheConfig, capacity: int) -> ChunkRun:
    """Least frequently used (in-cache hit count), ties to the least recently used."""
    return _runner(LfuState(ttl_s=_ttl(cfg), from_write=cfg.ttl_mode == "from_write",
                            capacity=capacity))
