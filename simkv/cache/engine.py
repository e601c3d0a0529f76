"""The exact block-cache engine: Trace + CacheConfig -> per-request records and a summary.

Prefix semantics: every block of a request is touched in chain order; a request's prefix hit
is the leading run of cached blocks.  ``chunk`` reuse keys the cache by content hash: any
cached block whose content matches is reused; the leading run of such blocks whose chained
hash was also seen before counts as an exact prefix hit, and the rest is position-independent
reuse of which ``blend_recompute_share`` is recomputed (CacheBlend-style).  Hit tokens count a final partial block by its own
tokens.  The clock is each request's arrival time: simulated time only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simkv.cache.config import CacheConfig
from simkv.cache.kernels import prefix_runs
from simkv.cache.policies import POLICIES, KernelOutput
from simkv.cache.stream import AccessStream, build_stream, dense_block_ids
from simkv.errors import InputError
from simkv.models.geometry import ModelSpec, get_model
from simkv.trace.model import Trace


def resolve_trace_models(trace: Trace, model: str | ModelSpec | None) -> Trace:
    """Attach ``model`` to a trace that has none (or one); refuse it on a multi-model trace."""
    if model is None:
        return trace
    name = model.name if isinstance(model, ModelSpec) else str(model)
    if len(set(trace.models)) > 1:
        raise InputError("this trace names several models; each request's own model is used, "
                         "so --model is refused", where="--model")
    return trace.with_model(name)


def block_bytes_per_access(trace: Trace, specs: dict[str, ModelSpec] | None = None) -> np.ndarray:
    """Bytes each block access weighs, from its request's model (KV geometry catalogue)."""
    if not trace.has_models:
        raise InputError("the trace names no model, so capacity in bytes is undefined: "
                         "give --model NAME (or count capacity in blocks)", where="--model")
    specs = specs or {}
    per_model = np.array([
        (specs.get(m) or get_model(m)).block_bytes(trace.block_tokens) for m in trace.models
    ], dtype=np.int64)
    per_request = per_model[trace.model_index.astype(np.int64)]
    return np.repeat(per_request, np.diff(trace.block_offsets))


@dataclass
class SimResult:
    """What a simulation returns: per-request ``records`` and a one-row ``summary``."""

    config: CacheConfig
    records: pd.DataFrame
    summary_dict: dict
    hit: np.ndarray = field(repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary_dict])


def seen_before(trace: Trace) -> np.ndarray:
    """Per block access: 1 if its chained hash occurred in an earlier access, else 0."""
    ids, _ = dense_block_ids(trace)  # dense ids are numbered in order of first appearance
    if not len(ids):
        return np.zeros(0, dtype=np.uint8)
    prior_max = np.concatenate(([-1], np.maximum.accumulate(ids)[:-1]))
    return (ids <= prior_max).astype(np.uint8)


def capacity_units(trace: Trace, cfg: CacheConfig, specs=None) -> tuple[np.ndarray | None, int]:
    """Per-access weights (None = 1 each) and the capacity in those units (-1 unlimited)."""
    if cfg.capacity_bytes is not None:
        return block_bytes_per_access(trace, specs), int(cfg.capacity_bytes)
    if cfg.capacity_blocks is not None:
        return None, int(cfg.capacity_blocks)
    return None, -1


def run_kernel(trace: Trace, cfg: CacheConfig, specs=None) -> tuple[AccessStream, KernelOutput]:
    """Run the configured policy over the trace's block (or content) stream."""
    policy = POLICIES.get(cfg.policy, where="policy")
    weights, capacity = capacity_units(trace, cfg, specs)
    if cfg.reuse == "chunk" and trace.content_hashes is None:
        raise InputError("chunk reuse needs per-block content hashes, and this trace has none "
                         "(importers of chained hashes cannot know them); use --reuse prefix",
                         where="--reuse")
    stream = build_stream(trace, weights, content=cfg.reuse == "chunk")
    return stream, policy(trace, stream, cfg, capacity)


def simulate(trace: Trace, cache: CacheConfig | None = None, *, model: str | ModelSpec | None = None,
             specs: dict[str, ModelSpec] | None = None) -> SimResult:
    """Simulate ``cache`` over ``trace`` in arrival order; see the module docstring."""
    cache = cache or CacheConfig()
    trace = resolve_trace_models(trace, model)
    stream, out = run_kernel(trace, cache, specs)
    hits, lead = prefix_runs(out.hit, trace.block_offsets)
    if cache.reuse == "chunk":
        # a content hit is a true prefix hit only where the block's whole prefix (its chained
        # hash) has been seen before; the rest is position-independent reuse that blends
        _, lead = prefix_runs(out.hit & seen_before(trace), trace.block_offsets)
    n_blocks = np.diff(trace.block_offsets)
    bt = trace.block_tokens
    full_hit = (lead == n_blocks)
    lead_tokens = np.where(full_hit, trace.input_tokens, lead * bt)
    if out.prefix_hit_tokens is not None:
        lead_tokens = out.prefix_hit_tokens
    if cache.reuse == "chunk":
        tok = trace.block_token_counts()
        hit_tok = np.add.reduceat(np.where(out.hit.astype(bool), tok, 0), trace.block_offsets[:-1]) \
            if len(tok) else np.zeros(trace.n_requests, dtype=np.int64)
        hit_tok = np.where(n_blocks > 0, hit_tok, 0)
        nonprefix = hit_tok - lead_tokens
        blend = np.floor(nonprefix * cache.blend_recompute_share).astype(np.int64)
        reused = lead_tokens + nonprefix - blend
    else:
        hit_tok = lead_tokens
        blend = np.zeros(trace.n_requests, dtype=np.int64)
        reused = lead_tokens
    models = np.array(trace.models + ("",), dtype=object)[trace.model_index.astype(np.int64)]
    records = pd.DataFrame({
        "request": np.arange(trace.n_requests, dtype=np.int64),
        "arrival_s": trace.arrival_s,
        "session_id": trace.session_ids,
        "tenant_id": trace.tenant_ids,
        "model": models,
        "input_tokens": trace.input_tokens,
        "output_tokens": trace.output_tokens,
        "blocks": n_blocks,
        "hit_blocks": hits,
        "prefix_hit_blocks": lead,
        "prefix_hit_tokens": lead_tokens.astype(np.int64),
        "chunk_hit_tokens": hit_tok.astype(np.int64),
        "blend_recompute_tokens": blend,
        "reused_tokens": reused.astype(np.int64),
        "missed_tokens": (trace.input_tokens - reused).astype(np.int64),
        "evictions": out.evictions,
        "expirations": out.expirations,
    })
    input_tokens = int(trace.input_tokens.sum())
    accesses = int(len(stream.ids))
    summary = {
        "requests": int(trace.n_requests),
        "input_tokens": input_tokens,
        "block_accesses": accesses,
        "unique_blocks": int(stream.n_objects),
        "block_hit_ratio": float(hits.sum() / accesses) if accesses else 0.0,
        "prefix_hit_tokens": int(lead_tokens.sum()),
        "prefix_token_hit_ratio": float(lead_tokens.sum() / input_tokens) if input_tokens else 0.0,
        "reused_tokens": int(reused.sum()),
        "token_reuse_ratio": float(reused.sum() / input_tokens) if input_tokens else 0.0,
        "evictions": int(out.evictions.sum()),
        "expirations": int(out.expirations.sum()),
        "policy": cache.policy,
        "capacity_bytes": cache.capacity_bytes,
        "capacity_blocks": cache.capacity_blocks,
        "ttl_s": cache.ttl_s,
        "ttl_mode": cache.ttl_mode,
        "reuse": cache.reuse,
        "block_tokens": trace.block_tokens,
    }
    return SimResult(config=cache, records=records, summary_dict=summary, hit=out.hit)
