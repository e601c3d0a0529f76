"""Storage levels: an ordered hierarchy from GPU HBM down to a remote persistent bucket.

("Tiers" is kept for subscription plans in the economics package.)  Each level has its own
capacity, chunk size in tokens (vLLM blocks of 16 or 128, LMCache chunks of 256), bandwidths,
per-access latency and a storage price; the hierarchy says how chunks are placed (inclusive:
write-through to every level; exclusive: one level at a time), whether a hit promotes and an
eviction demotes, and which chunks a level below HBM admits.  Frozen dataclasses; the
simulation is ``simkv.sizing.hierarchy.simulate_levels``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from simkv.errors import InputError

PLACEMENTS = ("inclusive", "exclusive")
ADMISSIONS = ("all", "second_access")


@dataclass(frozen=True)
class StorageLevel:
    """One level.  ``capacity_bytes`` None = unlimited; ``ttl_s`` refreshed on every touch;
    ``persistent`` levels survive a replica restart; ``store_partial`` False drops a prompt's
    final partial chunk (LMCache's ``save_unfull_chunk`` off); ``quotas_bytes`` caps the bytes
    of one model within the level (model name -> bytes)."""

    name: str
    capacity_bytes: int | None
    chunk_tokens: int
    read_bytes_per_s: float
    write_bytes_per_s: float
    latency_s: float = 0.0
    price_usd_per_gib_month: float = 0.0
    persistent: bool = False
    store_partial: bool = True
    ttl_s: float | None = None
    quotas_bytes: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        where = f"levels.{self.name}"
        if not self.name:
            raise InputError("a level needs a name", where="levels")
        if self.capacity_bytes is not None and self.capacity_bytes < 0:
            raise InputError("capacity must be >= 0", where=f"{where}.capacity")
        if self.chunk_tokens <= 0:
            raise InputError("chunk_tokens must be > 0", where=f"{where}.chunk_tokens")
        if self.read_bytes_per_s <= 0 or self.write_bytes_per_s <= 0:
            raise InputError("bandwidths must be > 0", where=f"{where}.bandwidth")
        if self.latency_s < 0 or self.price_usd_per_gib_month < 0:
            raise InputError("latency and price must be >= 0", where=where)
        if self.ttl_s is not None and self.ttl_s <= 0:
            raise InputError("ttl must be > 0", where=f"{where}.ttl")

    def with_capacity(self, capacity_bytes: int | None) -> StorageLevel:
        return replace(self, capacity_bytes=capacity_bytes)


@dataclass(frozen=True)
class Hierarchy:
    """Levels fastest first, and the rules that move chunks between them."""

    levels: tuple[StorageLevel, ...]
    placement: str = "inclusive"
    promote_on_hit: bool = True
    demote_on_evict: bool = True
    admission: str = "all"

    def __post_init__(self) -> None:
        if not self.levels:
            raise InputError("a hierarchy needs at least one level", where="levels")
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise InputError(f"level names must be unique: {names}", where="levels")
        if self.placement not in PLACEMENTS:
            raise InputError(f"unknown placement {self.placement!r} (valid: {', '.join(PLACEMENTS)})",
                             where="placement")
        if self.admission not in ADMISSIONS:
            raise InputError(f"unknown admission {self.admission!r} (valid: {', '.join(ADMISSIONS)})",
                             where="admission")
        if self.placement == "exclusive" and len({lv.chunk_tokens for lv in self.levels}) > 1:
            raise InputError("exclusive placement moves chunks between levels, so every level "
                             "needs the same chunk_tokens", where="placement")

    def index(self, name: str | None, *, where: str) -> int:
        """Level index by name; None = the last persistent level (else the last level)."""
        if name is None:
            persistent = [i for i, lv in enumerate(self.levels) if lv.persistent]
            return persistent[-1] if persistent else len(self.levels) - 1
        for i, lv in enumerate(self.levels):
            if lv.name == name:
                return i
        raise InputError(f"unknown level {name!r} (valid: {', '.join(lv.name for lv in self.levels)})",
                         where=where)


GB = 1000**3
GIB = 1024**3


def default_levels(*, hbm_bytes: int | None = 20 * GIB, dram_bytes: int | None = 5 * GB,
                   nvme_bytes: int | None = 500 * GB, bucket_bytes: int | None = 2000 * GB,
                   hbm_chunk_tokens: int = 16, chunk_tokens: int = 256) -> tuple[StorageLevel, ...]:
    """vLLM HBM prefix cache over LMCache local CPU, local disk and a remote bucket.

    Bandwidths from docs/facts.md: H100 HBM 3.35 TB/s, PCIe Gen5 x16 ~64 GB/s to host
    DRAM, NVMe Gen4 ~7 GB/s, a remote tier ~2 GB/s; sizes from LMCache defaults (5 GB local
    CPU).  Latencies are round figures (assumed, editable); prices are 0 until the user sets
    them (the economics price books carry real ones).  A level with capacity 0 is left out.
    """
    levels = [
        StorageLevel("hbm", hbm_bytes, hbm_chunk_tokens, 3.35e12, 3.35e12, 0.0),
        StorageLevel("dram", dram_bytes, chunk_tokens, 64e9, 64e9, 10e-6),
        StorageLevel("nvme", nvme_bytes, chunk_tokens, 7e9, 7e9, 100e-6),
        StorageLevel("bucket", bucket_bytes, chunk_tokens, 2e9, 2e9, 5e-3, persistent=True),
    ]
    return tuple(lv for lv in levels if lv.capacity_bytes != 0)
