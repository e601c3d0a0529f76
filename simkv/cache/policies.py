"""Eviction policies, registered by name (``CacheConfig.policy`` / ``--policy``).

A policy is a function ``run(trace, stream, cfg, capacity) -> KernelOutput`` where
``capacity`` is in the stream's size units (bytes or blocks; ``-1`` unlimited).  Adding a
policy means registering one more function here or in its own module, never editing a switch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simkv.cache.config import CacheConfig
from simkv.cache.kernels import run_lfu, run_list_policy
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


PolicyFn = Callable[[Trace, AccessStream, CacheConfig, int], KernelOutput]
POLICIES: Registry[PolicyFn] = Registry("policy")


def _ttl(cfg: CacheConfig) -> float:
    return -1.0 if cfg.ttl_s is None else float(cfg.ttl_s)


@POLICIES.register("lru")
def _lru(trace: Trace, stream: AccessStream, cfg: CacheConfig, capacity: int) -> KernelOutput:
    """Least recently used: a hit moves the block to the front; evict from the back."""
    return KernelOutput(*run_list_policy(stream.ids, stream.sizes, stream.n_objects,
                                         stream.req_offsets, stream.req_time_s, capacity,
                                         _ttl(cfg), True, cfg.ttl_mode == "from_write"))


@POLICIES.register("fifo")
def _fifo(trace: Trace, stream: AccessStream, cfg: CacheConfig, capacity: int) -> KernelOutput:
    """First in, first out: hits do not reorder; evict the oldest insertion."""
    return KernelOutput(*run_list_policy(stream.ids, stream.sizes, stream.n_objects,
                                         stream.req_offsets, stream.req_time_s, capacity,
                                         _ttl(cfg), False, cfg.ttl_mode == "from_write"))


@POLICIES.register("lfu")
def _lfu(trace: Trace, stream: AccessStream, cfg: CacheConfig, capacity: int) -> KernelOutput:
    """Least frequently used (in-cache hit count), ties to the least recently used."""
    return KernelOutput(*run_lfu(stream.ids, stream.sizes, stream.n_objects, stream.req_offsets,
                                 stream.req_time_s, capacity, _ttl(cfg),
                                 cfg.ttl_mode == "from_write"))
