"""simkv: what persistent KV cache costs and saves, and how big and long-lived it should be.

A small notebook API over the same code the CLI uses::

    import simkv
    trace = simkv.load_trace("trace.jsonl")
    result = simkv.simulate(trace, simkv.CacheConfig(capacity_bytes=10 * 2**30), model="llama-3.1-8b")
    result.summary, result.records      # pandas DataFrames
"""

from __future__ import annotations

from typing import Any

from simkv.errors import InputError
from simkv.version import __version__


def __getattr__(name: str) -> Any:
    """The notebook API, imported on first use (PEP 562): ``import simkv`` alone loads no
    simulator, so the report renderer (``simkv.report``) stays free of them."""
    if name in ("CacheConfig", "SimResult", "simulate"):
        from simkv import cache

        return getattr(cache, name)
    if name in ("ModelSpec", "get_model"):
        from simkv import models

        return getattr(models, name)
    if name in ("Trace", "load_trace", "save_trace"):
        from simkv import trace

        return getattr(trace, name)
    raise AttributeError(f"module 'simkv' has no attribute {name!r}")

__all__ = ["CacheConfig", "SimResult", "simulate", "InputError", "ModelSpec", "get_model", "Trace",
           "load_trace", "save_trace", "__version__"]
