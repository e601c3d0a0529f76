"""Optional links to the latency model (``simkv.latency``), which may not be installed yet.

Expected interface (from the latency package):

- ``simkv.latency.prefill_tokens_per_s(model: ModelSpec, gpu: str) -> float``: sustained
  prefill throughput of one replica (tokens/s);
- ``simkv.latency.slo.evaluate(trace, sim, model, *, ttft_p90_slo_s, gpu) -> dict`` with keys
  ``ttft_p90_s`` (float), ``meets_slo`` (bool) and optionally ``gpus_needed`` /
  ``gpus_needed_no_cache`` (int): the TTFT of a cache configuration's simulated run.

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


def slo_evaluate(trace, sim, spec, *, ttft_p90_slo_s: float, gpu: str) -> tuple[dict[str, Any] | None, str]:
    """The latency model's SLO check of one simulated cache, or (None, why not)."""
    fn, why = _attr("simkv.latency.slo", "evaluate")
    if fn is None:
        return None, why
    try:
        out = fn(trace, sim, spec, ttft_p90_slo_s=ttft_p90_slo_s, gpu=gpu)
    except TypeError as exc:
        return None, f"simkv.latency.slo.evaluate has another signature ({exc})"
    if not isinstance(out, dict) or "meets_slo" not in out:
        return None, "simkv.latency.slo.evaluate returned no 'meets_slo'"
    return out, ""
