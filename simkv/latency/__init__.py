"""Latency: prefill/KV-load/decode times, the SimPy serving simulation, calibration and SLOs.

Entry points: :func:`simkv.latency.api.simulate_with_latency` (``simkv simulate --latency``),
:mod:`simkv.latency.calibrate` (``simkv calibrate``), :mod:`simkv.latency.slo`.
Importing this package has no side effects beyond registering GPUs, tiers and routers.
"""

from simkv.latency.api import prefill_tokens_per_s
from simkv.latency.hardware import GPUS, TIERS, GpuSpec, KvTier
from simkv.latency.routing import ROUTERS

__all__ = ["GPUS", "TIERS", "ROUTERS", "GpuSpec", "KvTier", "prefill_tokens_per_s"]
