"""Sizing engine: exact capacity x TTL curves in one pass, Belady bounds, SHARDS sampling,
storage levels with lifecycle events, and the storage view (see docs/sizing.md)."""

from simkv.sizing.grid import lru_grid

__all__ = ["lru_grid"]
