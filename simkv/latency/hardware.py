"""Hardware catalogues: accelerators (dense bf16 throughput, memory, HBM bandwidth) and KV tiers.

Both are registries (``GPUS``, ``TIERS``): adding a GPU or a storage tier means registering one
more entry, never editing a switch.  Every figure names its source; figures that are modelling
assumptions rather than published numbers say so, and calibration (``simkv calibrate``)
replaces them with measured coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

from simkv.registry import Registry

TB = 1e12
GB = 1e9


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator: peak dense bf16 FLOP/s, memory and HBM bandwidth (per device)."""

    name: str
    dense_bf16_flops: float
    memory_bytes: float
    hbm_bandwidth_bytes_per_s: float
    source: str


@dataclass(frozen=True)
class KvTier:
    """Where a cached prefix lives: loading it costs ``bytes / bandwidth`` plus a latency per
    ``chunk_tokens``-token chunk (LMCache moves KV in chunks).  ``resident`` tiers (HBM) hold the
    KV where attention reads it, so a hit there costs no load at all."""

    name: str
    bandwidth_bytes_per_s: float
    chunk_latency_s: float
    chunk_tokens: int
    resident: bool
    source: str


GPUS: Registry[GpuSpec] = Registry("GPU")
TIERS: Registry[KvTier] = Registry("KV tier")

_FACTS = "docs/facts.md hardware table (vendor datasheets)"

for _gpu in (
    GpuSpec("H100", 989 * TB, 80 * GB, 3.35 * TB, f"H100 SXM; {_FACTS}"),
    GpuSpec("H200", 989 * TB, 141 * GB, 4.8 * TB, f"H200 SXM; {_FACTS}"),
    GpuSpec("A100", 312 * TB, 80 * GB, 2.0 * TB, f"A100 80GB; {_FACTS}"),
    GpuSpec("L40S", 362 * TB, 48 * GB, 0.864 * TB, f"L40S; {_FACTS}"),
    GpuSpec("MI300X", 1307 * TB, 192 * GB, 5.3 * TB, f"MI300X (~1,307 TFLOP/s); {_FACTS}"),
    # The engine tests run vLLM's CPU build on a small x86 host: nominal figures only, meant to
    # be replaced by a calibration measured on that host.
    GpuSpec("CPU", 0.2 * TB, 24 * GB, 20 * GB,
            "assumption: nominal 2-core x86 host (~0.2 TFLOP/s bf16, ~20 GB/s DRAM); calibrate it"),
):
    GPUS.register(_gpu.name, _gpu)

_LMCACHE_CHUNK = 256  # LMCache chunk_size default (lmcache/v1/config.py; FACTS.md)

for _tier in (
    KvTier("hbm", float("inf"), 0.0, _LMCACHE_CHUNK, True,
           "KV already in GPU memory (vLLM prefix cache): no load"),
    KvTier("cpu", 64 * GB, 20e-6, _LMCACHE_CHUNK, False,
           "PCIe Gen5 x16 ~64 GB/s per direction (FACTS.md); 20 us per chunk is an assumption"),
    KvTier("cpu-gen4", 32 * GB, 20e-6, _LMCACHE_CHUNK, False,
           "PCIe Gen4 x16 ~32 GB/s (FACTS.md); 20 us per chunk is an assumption"),
    KvTier("nvme", 7 * GB, 100e-6, _LMCACHE_CHUNK, False,
           "NVMe Gen4 ~7 GB/s sequential (FACTS.md); 100 us per chunk is an assumption"),
    KvTier("nvme-gen5", 14 * GB, 100e-6, _LMCACHE_CHUNK, False,
           "NVMe Gen5 ~14 GB/s sequential (FACTS.md); 100 us per chunk is an assumption"),
    KvTier("remote", 10 * GB, 500e-6, _LMCACHE_CHUNK, False,
           "LMCache remote tier, rebuilt Redis client 10 GB/s (FACTS.md); 500 us per chunk is an "
           "assumption"),
    KvTier("remote-slow", 2 * GB, 500e-6, _LMCACHE_CHUNK, False,
           "2 GB/s, quoted as what an L2 backend needs to outrun prefill (FACTS.md); 500 us per "
           "chunk is an assumption"),
):
    TIERS.register(_tier.name, _tier)
