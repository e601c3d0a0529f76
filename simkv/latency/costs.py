"""Per-request prefill, KV-load and decode times: the analytic model and the calibrated one.

Both models answer the same four questions, so the serving simulation never asks which one it
holds:

- ``work_s(spec, new, cached)``: compute time of prefilling ``new`` tokens after ``cached``;
- ``floor_s(spec, new, cached)``: the memory-bound floor of that forward pass;
- ``load_s(spec, tokens)``: time to bring ``tokens`` of cached KV to the GPU;
- ``fixed_s``: a per-forward overhead, paid once per engine step.

A standalone prefill takes ``fixed_s + max(work, floor) + exposed load``.  Loading a prefix and
computing the rest can overlap layer by layer (``overlap``): with ``L`` layers only one layer's
worth of the shorter activity stays exposed, ``max(load, work) + min(load, work) / L``.

The calibrated model is the linear fit ``a + b*u + c*u*ctx + d*cached`` (``u`` uncached tokens,
``ctx = cached + (u + 1) / 2`` the mean context a new token attends over); it prices every
cached token with ``d`` whatever the tier, because the engine it was measured on used one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simkv.latency.compute import ModelCompute, model_compute
from simkv.latency.hardware import GpuSpec, KvTier
from simkv.models.geometry import ModelSpec

#: Share of peak dense bf16 throughput a prefill reaches (model FLOPs utilisation).  An
#: assumption: 40-60% is what well-tuned prefill kernels typically report; calibrate it away.
DEFAULT_EFFICIENCY = 0.5


def _kv_bytes(spec: ModelSpec, tokens) -> np.ndarray:
    """Vectorised ``ModelSpec.kv_bytes`` (per GPU, window layers capped at the window)."""
    t = np.asarray(tokens, dtype=np.float64)
    per_layer = spec.kv_bytes_per_token_per_layer()
    window = np.minimum(t, float(spec.sliding_window or 0))
    return spec.full_layers * per_layer * t + spec.window_layers * per_layer * window


@dataclass(frozen=True)
class AnalyticLatency:
    """Roofline-style model from the model config, a GPU and a KV tier (see module docstring)."""

    gpu: GpuSpec
    tier: KvTier
    efficiency: float = DEFAULT_EFFICIENCY
    overhead_s: float = 0.0
    tensor_parallel: int = 1
    _compute: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def fixed_s(self) -> float:
        return self.overhead_s

    @property
    def _flops_per_s(self) -> float:
        return self.gpu.dense_bf16_flops * self.efficiency * self.tensor_parallel

    def compute_of(self, spec: ModelSpec) -> ModelCompute:
        if spec.name not in self._compute:
            self._compute[spec.name] = model_compute(spec)
        return self._compute[spec.name]

    def work_s(self, spec: ModelSpec, new, cached) -> np.ndarray:
        return self.compute_of(spec).prefill_flops(new, cached) / self._flops_per_s

    def floor_s(self, spec: ModelSpec, new, cached) -> np.ndarray:
        weights = self.compute_of(spec).weight_bytes_touched(new) / self.tensor_parallel
        kv = _kv_bytes(spec.with_options(tensor_parallel=self.tensor_parallel),
                       np.asarray(new, dtype=np.float64) + np.asarray(cached, dtype=np.float64))
        return (weights + kv) / self.gpu.hbm_bandwidth_bytes_per_s

    def load_s(self, spec: ModelSpec, tokens) -> np.ndarray:
        t = np.asarray(tokens, dtype=np.float64)
        if self.tier.resident:
            return np.zeros_like(t)
        per_gpu = _kv_bytes(spec.with_options(tensor_parallel=self.tensor_parallel), t)
        chunks = np.ceil(t / self.tier.chunk_tokens)
        return per_gpu / self.tier.bandwidth_bytes_per_s + chunks * self.tier.chunk_latency_s

    def decode_step_s(self, spec: ModelSpec, context) -> np.ndarray:
        """One decode step of one sequence alone (memory-bound in practice)."""
        ctx = np.asarray(context, dtype=np.float64)
        flops = self.compute_of(spec).decode_flops(ctx) / self._flops_per_s
        return self.fixed_s + np.maximum(flops, self.floor_s(spec, np.ones_like(ctx), ctx))


@dataclass(frozen=True)
class LinearCoefficients:
    """TTFT ~ a + b*uncached + c*uncached*ctx + d*cached (seconds, per token, per token^2)."""

    intercept_s: float
    per_uncached_token_s: float
    per_uncached_context_token_s: float
    per_cached_token_s: float

    def as_array(self) -> np.ndarray:
        return np.array([self.intercept_s, self.per_uncached_token_s,
                         self.per_uncached_context_token_s, self.per_cached_token_s])


def design_matrix(uncached, cached) -> np.ndarray:
    """Columns [1, u, u * ctx, cached] of the linear TTFT model (ctx = cached + (u + 1) / 2)."""
    u = np.asarray(uncached, dtype=np.float64)
    p = np.asarray(cached, dtype=np.float64)
    return np.column_stack([np.ones_like(u), u, u * (p + (u + 1.0) / 2.0), p])


@dataclass(frozen=True)
class CalibratedLatency:
    """The fitted linear model; decode steps still come from ``fallback`` (TTFT data has none)."""

    coefficients: LinearCoefficients
    fallback: AnalyticLatency
    #: measured seconds per decode step (a calibration from records with inter-token times)
    decode_step_measured_s: float | None = None

    @property
    def fixed_s(self) -> float:
        return self.coefficients.intercept_s

    @property
    def tensor_parallel(self) -> int:
        return self.fallback.tensor_parallel

    def work_s(self, spec: ModelSpec, new, cached) -> np.ndarray:
        x = design_matrix(new, cached)
        c = self.coefficients
        return x[:, 1] * c.per_uncached_token_s + x[:, 2] * c.per_uncached_context_token_s

    def floor_s(self, spec: ModelSpec, new, cached) -> np.ndarray:
        return np.zeros(np.shape(np.asarray(new)), dtype=np.float64)

    def load_s(self, spec: ModelSpec, tokens) -> np.ndarray:
        return np.asarray(tokens, dtype=np.float64) * self.coefficients.per_cached_token_s

    def decode_step_s(self, spec: ModelSpec, context) -> np.ndarray:
        if self.decode_step_measured_s is not None:
            return np.full(np.shape(np.asarray(context)), self.decode_step_measured_s)
        return self.fallback.decode_step_s(spec, context)


LatencyModel = AnalyticLatency | CalibratedLatency


@dataclass(frozen=True)
class RequestCosts:
    """Per-request modelled times for serving each request alone (arrays, one entry per request).

    ``computed_tokens`` are prefilled, ``cached_tokens`` reused (``loaded_tokens`` of them
    brought from a non-resident tier).  ``compute_s = fixed + max(work, floor)``;
    ``exposed_load_s`` is the part of ``load_s`` compute does not hide; a request served alone
    has TTFT ``compute_s + exposed_load_s``.
    """

    computed_tokens: np.ndarray
    cached_tokens: np.ndarray
    loaded_tokens: np.ndarray
    work_s: np.ndarray
    floor_s: np.ndarray
    load_s: np.ndarray
    exposed_load_s: np.ndarray
    compute_s: np.ndarray
    decode_s: np.ndarray
    load_beats_recompute: np.ndarray
    fixed_s: float

    @property
    def standalone_ttft_s(self) -> np.ndarray:
        return self.compute_s + self.exposed_load_s


def _exposed(load: np.ndarray, work: np.ndarray, layers: np.ndarray, overlap: bool) -> np.ndarray:
    if not overlap:
        return load
    return np.maximum(load - work, 0.0) + np.minimum(load, work) / layers


def request_costs(lat: LatencyModel, specs: list[ModelSpec], spec_index: np.ndarray,
                  input_tokens, resident_tokens, loadable_tokens, output_tokens, *,
                  overlap: bool = False) -> RequestCosts:
    """Times for each request given its cache hits, choosing per request to load or recompute.

    ``resident_tokens`` (already in HBM) are always reused; ``loadable_tokens`` follow them
    (a prefix in a slower tier) and are loaded only when that beats recomputing them.  A fully
    cached prompt still computes its last token, as engines do to produce logits.
    ``specs[spec_index[i]]`` is request ``i``'s model.
    """
    inp = np.asarray(input_tokens, dtype=np.int64)
    res = np.minimum(np.asarray(resident_tokens, dtype=np.int64), inp)
    lod = np.minimum(np.asarray(loadable_tokens, dtype=np.int64), inp - res)
    # at least one token is computed: take it from the loaded part first, then the resident
    short = (inp > 0) & (res + lod >= inp)
    take_lod = short & (lod > 0)
    lod = np.where(take_lod, lod - 1, lod)
    res = np.where(short & ~take_lod & (res > 0), res - 1, res)
    n = len(inp)
    out = {k: np.zeros(n) for k in ("work_all", "floor_all", "load", "work_res", "floor_res",
                                     "decode", "layers")}
    idx = np.asarray(spec_index, dtype=np.int64)
    for m, spec in enumerate(specs):
        rows = np.flatnonzero(idx == m) if len(specs) > 1 else np.arange(n)
        if not len(rows):
            continue
        i, r, lo = inp[rows], res[rows], lod[rows]
        out["work_all"][rows] = lat.work_s(spec, i - r - lo, r + lo)
        out["floor_all"][rows] = lat.floor_s(spec, i - r - lo, r + lo)
        out["load"][rows] = lat.load_s(spec, r + lo) - lat.load_s(spec, r)
        out["work_res"][rows] = lat.work_s(spec, i - r, r)
        out["floor_res"][rows] = lat.floor_s(spec, i - r, r)
        ctx = i + np.asarray(output_tokens, dtype=np.float64)[rows] / 2.0
        out["decode"][rows] = np.asarray(output_tokens, dtype=np.float64)[rows] * \
            lat.decode_step_s(spec, ctx)
        out["layers"][rows] = float(spec.num_layers)
        if len(specs) == 1:
            break
    # resident tokens cost their calibrated per-token price too (the engine's own hits)
    res_load = np.zeros(n)
    if isinstance(lat, CalibratedLatency):
        res_load = res * lat.coefficients.per_cached_token_s
    exposed_all = _exposed(out["load"], out["work_all"], out["layers"], overlap) + res_load
    t_all = np.maximum(out["work_all"], out["floor_all"]) + exposed_all
    t_res = np.maximum(out["work_res"], out["floor_res"]) + res_load
    use_load = (lod > 0) & (t_all <= t_res)
    if isinstance(lat, CalibratedLatency):
        # a calibrated engine reuses its resident hits; "beats" compares against full recompute
        full = lat.work_s(None, inp, np.zeros(n))
        beats_res = t_res < full
    else:
        beats_res = np.ones(n, dtype=bool)
    beats = np.where(lod > 0, use_load, (res > 0) & beats_res)
    cached = np.where(use_load, res + lod, res)
    loaded = np.where(use_load, lod, 0)
    work = np.where(use_load, out["work_all"], out["work_res"])
    floor = np.where(use_load, out["floor_all"], out["floor_res"])
    load = np.where(use_load, out["load"], 0.0) + res_load
    exposed = np.where(use_load, exposed_all, res_load)
    return RequestCosts(
        computed_tokens=(inp - cached).astype(np.int64), cached_tokens=cached.astype(np.int64),
        loaded_tokens=loaded.astype(np.int64), work_s=work, floor_s=floor, load_s=load,
        exposed_load_s=exposed, compute_s=lat.fixed_s + np.maximum(work, floor),
        decode_s=out["decode"], load_beats_recompute=beats.astype(bool), fixed_s=float(lat.fixed_s),
    )
