"""simkv: what persistent KV cache costs and saves, and how big and long-lived it should be.

A small notebook API over the same code the CLI uses::

    import simkv
    trace = simkv.load_trace("trace.jsonl")
    result = simkv.simulate(trace, simkv.CacheConfig(capacity_bytes=10 * 2**30), model="llama-3.1-8b")
    result.summary, result.records      # pandas DataFrames
"""

from simkv.cache import CacheConfig, SimResult, simulate
from simkv.errors import InputError
from simkv.models import ModelSpec, get_model
from simkv.trace import Trace, load_trace, save_trace
from simkv.version import __version__

__all__ = ["CacheConfig", "SimResult", "simulate", "InputError", "ModelSpec", "get_model", "Trace",
           "load_trace", "save_trace", "__version__"]
