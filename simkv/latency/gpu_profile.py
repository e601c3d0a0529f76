"""The GPU profile from measured probe records (``harness/gpu_probe.py``), or "modelled only".

The latency model's GPU figures (``simkv.latency.hardware``) are datasheet numbers until a probe
has run on that GPU.  :func:`load_probe` reads a probe file; :func:`fit_profile` turns its
records into measured per-model figures in seconds:

- prefill: least squares of ``seconds = fixed_s + per_token_s x tokens`` over the prompt lengths;
- cached prefix: least squares of suffix-prefill seconds on ``cached_tokens`` (the extra cost
  of attending over a cached prefix, per cached token);
- decode: the median step time; host-to-device: the best pinned-copy bandwidth.

:func:`profile_status` says, for the report, whether committed records exist
(``simkv/data/gpu_records/*.json``); without them every GPU figure is modelled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simkv.errors import InputError

RECORDS_DIR = Path(__file__).resolve().parent.parent / "data" / "gpu_records"


@dataclass(frozen=True)
class ModelProfile:
    model: str
    prefill_fixed_s: float
    prefill_per_token_s: float
    per_cached_token_s: float | None
    decode_step_s: float | None


@dataclass(frozen=True)
class GpuProfile:
    gpu: str | None
    device: str
    torch: str
    models: dict[str, ModelProfile]
    h2d_bytes_per_s: float | None


def load_probe(path: Path) -> dict:
    """A probe file, checked for its kind and records."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"cannot read GPU records: {exc.strerror}", source=path) from None
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", source=path) from None
    if not isinstance(doc, dict) or doc.get("kind") != "gpu_probe" or \
            not isinstance(doc.get("records"), list):
        raise InputError("not a gpu_probe file (kind: gpu_probe, records: [...])", source=path)
    return doc


def _line(x: list[float], y: list[float]) -> tuple[float, float]:
    """(intercept, slope) of least squares; slope 0 with one point."""
    if len(x) < 2:
        return (float(y[0]) if y else 0.0), 0.0
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(intercept), float(slope)


def fit_profile(doc: dict) -> GpuProfile:
    """Measured per-model figures from one probe file's records (skipped ones left out)."""
    done = [r for r in doc["records"] if r.get("seconds") is not None]
    models = {}
    for name in sorted({r["model"] for r in done if "model" in r}):
        mine = [r for r in done if r.get("model") == name]
        pre = [r for r in mine if r["kind"] == "prefill"]
        suf = [r for r in mine if r["kind"] == "suffix_prefill"]
        dec = [r["seconds"] for r in mine if r["kind"] == "decode_step"]
        fixed, per_tok = _line([r["tokens"] for r in pre], [r["seconds"] for r in pre])
        _, per_cached = _line([r["cached_tokens"] for r in suf], [r["seconds"] for r in suf]) \
            if len(suf) >= 2 else (None, None)
        models[name] = ModelProfile(name, fixed, per_tok, per_cached,
                                    float(np.median(dec)) if dec else None)
    copies = [r["bytes_per_s"] for r in done if r["kind"] == "h2d_copy" and r.get("pinned")
              and r.get("bytes_per_s")]
    env = doc.get("environment", {})
    return GpuProfile(env.get("gpu"), str(env.get("device")), str(env.get("torch")), models,
                      max(copies) if copies else None)


def profile_status(records_dir: Path = RECORDS_DIR) -> str:
    """One line for the report: which GPUs were measured, or that the profile is modelled."""
    files = sorted(Path(records_dir).glob("*.json")) if Path(records_dir).is_dir() else []
    gpus = sorted({str(load_probe(f)["environment"].get("gpu")) for f in files})
    if not gpus:
        return "GPU profile: modelled only (datasheet figures; no GPU probe records committed)"
    return "GPU profile: measured on " + ", ".join(gpus) + " (harness/gpu_probe.py records)"
