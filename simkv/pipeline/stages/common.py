"""Helpers the stages share: unlimited-cache engine runs, working-set sizes, trace windows.

Stage modules import the simulators inside their functions: registering the stages (and
reusing every cached one) then loads no simulator at all, which keeps a second run fast.
"""

from __future__ import annotations

import numpy as np

from simkv.pipeline.workload import WorkloadInput


def blend_recompute_share() -> float:
    """The share the report uses: the CLI's default for ``--blend-recompute-share``
    (``simkv.cache.config``, read on use so that importing a stage loads no simulator)."""
    from simkv.cache.config import DEFAULT_BLEND_RECOMPUTE_SHARE

    return DEFAULT_BLEND_RECOMPUTE_SHARE


def unlimited(w: WorkloadInput, reuse: str = "prefix"):
    """An unlimited, TTL-free LRU cache over the workload (the most any cache can reuse)."""
    from simkv.cache import CacheConfig, simulate

    cfg = CacheConfig(reuse=reuse,
                      blend_recompute_share=blend_recompute_share() if reuse == "chunk" else 0.0)
    return simulate(w.trace, cfg)


def working_set_bytes(w: WorkloadInput) -> int:
    """Bytes of KV of every distinct block of the trace (each at its own model's size)."""
    from simkv.cache.engine import block_bytes_per_access
    from simkv.cache.stream import dense_block_ids

    ids, n_obj = dense_block_ids(w.trace)
    weight = np.zeros(n_obj, dtype=np.int64)
    weight[ids] = block_bytes_per_access(w.trace)
    return int(weight.sum())


def window_s(w: WorkloadInput) -> float:
    a = w.trace.arrival_s
    return float(a[-1] - a[0]) if len(a) > 1 else 0.0
