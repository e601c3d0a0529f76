"""The exact block-cache engine (policies, TTL, prefix and chunk reuse)."""

from simkv.cache import lmcache_policy, vllm_policy  # noqa: F401  (register the engine-faithful policies)
from simkv.cache.config import CacheConfig
from simkv.cache.engine import SimResult, simulate
from simkv.cache.policies import POLICIES, KernelOutput

__all__ = ["CacheConfig", "SimResult", "simulate", "POLICIES", "KernelOutput"]
