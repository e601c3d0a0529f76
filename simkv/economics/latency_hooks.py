"""Optional links to the latency model (``simkv.latency``), which may not be installed yet.

Expected interface (from the latency package):

- ``simkv.latency.prefill_tokens_per_s(model: ModelSpec, gpu: str) -> float``: sustained
  prefill throughput of one replica (tokens/s);
- ``simkv.latency.slo.gpus_saved(trace, cfg, slo_p90_s, *, model, gpu, **kw)`` returning an
  object with ``baseline`` / ``cached`` points (``meets``, ``gpus``, ``ttft_quantile_s``) and
  ``gpus_saved``: the fewest replicas meeting a p90 TTFT objective with and without a cache.

Anything else (not importable, another signature) is reported as "unavailable", never guessed.
"""

from __future__ import annotations

import importlib
from typing import Any


def _attr(module: str, name: str):
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None, f"{module} is not available"
    except Exception as exc:  # a package being written may fail to import: report, don't crash
        return None, f"{module} failed to import ({type(exc).__name__})"
    fn = getattr(mod, name, None)
    if not callable(fn):
        return None, f"{module} has no {name}()"
    return fn, ""


def prefill_tokens_per_s(spec, gpu: str) -> tuple[float | None, str]:
    """(tokens/s, how) from the latency model, or (None, why not)."""
    fn, why = _attr("simkv.latency", "prefill_tokens_per_s")
    if fn is None:
        return None, why
    try:
        value = float(fn(spec, gpu))
    except TypeError as exc:
        return None, f"simkv.latency.prefill_tokens_per_s has another signature ({exc})"
    if not value > 0:
        return None, "the latency model gave no positive throughput"
    return value, f"from the latency model ({gpu})"


def slo_evaluate(trace, cfg, spec, *, ttft_p90_slo_s: float, gpu: str) -> tuple[dict[str, Any] | None, str]:
    """The latency model's TTFT check of one cache configuration, or (None, why not).

    Uses ``simkv.latency.slo.gpus_saved(trace, cfg, slo_p90_s, model=..., gpu=..., specs=...)``
    (fewest replicas meeting the p90 objective with and without the cache).
    """
    fn, why = _attr("simkv.latency.slo", "gpus_saved")
    if fn is None:
        return None, why
    try:
        res = fn(trace, cfg, ttft_p90_slo_s, model=None, gpu=gpu, specs={spec.name: spec})
    except TypeError as exc:
        return None, f"simkv.latency.slo.gpus_saved has another signature ({exc})"
    cached, base = getattr(res, "cached", None), getattr(res, "baseline", None)
    if cached is None or base is None:
        return None, "simkv.latency.slo.gpus_saved returned no cached/baseline points"
    return {"meets_slo": bool(cached.meets), "ttft_p90_s": cached.ttft_quantile_s,
            "gpus_needed": cached.gpus, "gpus_needed_no_cache": base.gpus,
            "gpus_saved": res.gpus_saved}, ""
