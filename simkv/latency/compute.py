"""Prefill compute from a model's config: parameter counts, FLOPs and the memory-bound floor.

Counting rules (the usual transformer accounting; norms, biases and rotary tables are left out
because they are a rounding error):

- attention projections per layer: standard/GQA ``q, k, v, o``; MLA (``kv_lora_rank`` set)
  ``q`` (through ``q_lora_rank`` when set), ``kv_a`` (to latent + rope), ``kv_b`` (latent to
  per-head no-rope keys and values) and ``o``;
- MLP per layer: gated (three matrices) with ``intermediate_size``; MoE layers (``num_experts``,
  ``n_routed_experts`` or ``num_local_experts``) hold every expert but a token runs through
  ``num_experts_per_tok`` of them plus the shared experts and the router (DeepSeek's first
  ``first_k_dense_replace`` layers and Qwen's ``mlp_only_layers`` stay dense);
- embeddings cost no FLOPs; the LM head runs once per request in prefill (only the last
  position's logits are needed).

Prefill FLOPs for ``n`` new tokens after ``p`` cached ones:
``2 x active_linear_params x n + 2 x vocab x hidden + attention``, where attention in a
full-attention layer is ``2 x heads x (d_qk + d_v) x sum_{i=1..n} (p + i)`` (causal) and a
sliding-window layer caps each query's context at the window.

The memory-bound floor of one forward pass is the weight bytes it reads (dense weights plus the
experts ``T`` tokens are expected to touch, ``E x (1 - (1 - k/E)^T)`` per MoE layer) plus the KV
it attends over, at the GPU's HBM bandwidth.  Weight bytes use the config's dtype, so quantised
checkpoints (gpt-oss MXFP4 experts) overstate the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkv.errors import InputError
from simkv.models.geometry import ModelSpec

_EXPERT_KEYS = ("num_experts", "n_routed_experts", "num_local_experts")


def _field(spec: ModelSpec, key: str, default=None) -> int:
    value = spec.raw.get(key, default)
    if value is None:
        raise InputError(f"model config lacks {key!r}, which the latency model needs to count "
                         "parameters", source=spec.source or spec.name, where=f"field {key}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"must be a non-negative integer, got {value!r}",
                         source=spec.source or spec.name, where=f"field {key}")
    return value


@dataclass(frozen=True)
class ModelCompute:
    """Parameter counts and attention shape of one model (per replica, before TP sharding)."""

    name: str
    layers: int
    hidden_size: int
    vocab_size: int
    attention_params_per_layer: int
    dense_mlp_params_per_layer: int
    dense_mlp_layers: int
    moe_layers: int
    experts: int
    experts_per_token: int
    expert_params: int            # one routed expert
    moe_always_params_per_layer: int  # shared experts + router, run by every token
    attn_heads: int
    qk_head_dim: int
    v_head_dim: int
    window_layers: int
    sliding_window: int
    dtype_bytes: int

    # ---------------------------------------------------------------- parameter counts
    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def linear_params_total(self) -> int:
        """Every matrix in the layers (all experts), without embeddings and LM head."""
        return (self.layers * self.attention_params_per_layer
                + self.dense_mlp_layers * self.dense_mlp_params_per_layer
                + self.moe_layers * (self.experts * self.expert_params
                                     + self.moe_always_params_per_layer))

    @property
    def linear_params_active(self) -> int:
        """Matrices one token runs through in the layers (routed experts: top-k only)."""
        return (self.layers * self.attention_params_per_layer
                + self.dense_mlp_layers * self.dense_mlp_params_per_layer
                + self.moe_layers * (self.experts_per_token * self.expert_params
                                     + self.moe_always_params_per_layer))

    @property
    def total_params(self) -> int:
        """All weights, counting an untied LM head (what a checkpoint stores, give or take)."""
        return self.linear_params_total + self.embedding_params + self.lm_head_params

    @property
    def active_params(self) -> int:
        """Weights a token activates, embedding and LM head included (the "A3B" figure)."""
        return self.linear_params_active + self.embedding_params + self.lm_head_params

    # ---------------------------------------------------------------- FLOPs
    @property
    def attention_flops_per_query_key(self) -> int:
        """FLOPs one query spends on one key in one layer (scores and weighted values)."""
        return 2 * self.attn_heads * (self.qk_head_dim + self.v_head_dim)

    def attention_pairs(self, new_tokens, cached_tokens) -> np.ndarray:
        """Causal query-key pairs summed over layers (window layers capped at the window)."""
        n = np.asarray(new_tokens, dtype=np.float64)
        p = np.asarray(cached_tokens, dtype=np.float64)
        full = n * p + n * (n + 1.0) / 2.0
        total = (self.layers - self.window_layers) * full
        if self.window_layers:
            w = float(self.sliding_window)
            m = np.clip(w - p, 0.0, None)
            m = np.minimum(n, m)
            capped = m * p + m * (m + 1.0) / 2.0 + (n - m) * w
            total = total + self.window_layers * capped
        return total

    def prefill_flops(self, new_tokens, cached_tokens) -> np.ndarray:
        """FLOPs to prefill ``new_tokens`` after ``cached_tokens`` already-computed ones."""
        n = np.asarray(new_tokens, dtype=np.float64)
        linear = 2.0 * self.linear_params_active * n
        head = np.where(n > 0, 2.0 * self.lm_head_params, 0.0)
        attn = self.attention_flops_per_query_key * self.attention_pairs(n, cached_tokens)
        return linear + head + attn

    def decode_flops(self, context_tokens) -> np.ndarray:
        """FLOPs of one decode step (one new token) over ``context_tokens`` of context."""
        return self.prefill_flops(np.ones_like(np.asarray(context_tokens, dtype=np.float64)),
                                  context_tokens)

    # ---------------------------------------------------------------- memory floor
    def weight_bytes_touched(self, tokens) -> np.ndarray:
        """Weight bytes one forward over ``tokens`` tokens reads (expected experts touched)."""
        t = np.asarray(tokens, dtype=np.float64)
        dense = (self.layers * self.attention_params_per_layer
                 + self.dense_mlp_layers * self.dense_mlp_params_per_layer
                 + self.moe_layers * self.moe_always_params_per_layer
                 + self.lm_head_params)
        if self.moe_layers and self.experts:
            e, k = float(self.experts), float(self.experts_per_token)
            touched = e * (1.0 - np.power(1.0 - k / e, np.maximum(t, 1.0)))
            experts = self.moe_layers * touched * self.expert_params
        else:
            experts = np.zeros_like(t)
        return (dense + experts) * float(self.dtype_bytes)


def model_compute(spec: ModelSpec) -> ModelCompute:
    """Count a model's parameters from its config (``ModelSpec.raw``); see the module docstring."""
    raw = spec.raw
    h = spec.hidden_size
    layers = spec.num_layers
    heads = spec.num_attention_heads
    vocab = spec.vocab_size if spec.vocab_size else _field(spec, "vocab_size")
    if spec.is_mla:
        rope = _field(spec, "qk_rope_head_dim")
        nope = _field(spec, "qk_nope_head_dim")
        v_dim = _field(spec, "v_head_dim")
        rank = spec.kv_lora_rank
        q_rank = raw.get("q_lora_rank")
        q = (h * q_rank + q_rank * heads * (nope + rope)) if q_rank else h * heads * (nope + rope)
        attn = q + h * (rank + rope) + rank * heads * (nope + v_dim) + heads * v_dim * h
        qk_dim = nope + rope
    else:
        d = spec.head_dim
        attn = h * heads * d + 2 * h * spec.num_kv_heads * d + heads * d * h
        qk_dim = v_dim = d
    experts = next((raw[k] for k in _EXPERT_KEYS if raw.get(k)), 0)
    if experts:
        if not isinstance(experts, int) or experts <= 0:
            raise InputError(f"expert count must be a positive integer, got {experts!r}",
                             source=spec.source or spec.name)
        k = _field(spec, "num_experts_per_tok")
        expert_inter = raw.get("moe_intermediate_size") or _field(spec, "intermediate_size")
        expert = 3 * h * expert_inter
        shared = int(raw.get("n_shared_experts") or 0) * expert
        if raw.get("shared_expert_intermediate_size"):
            shared += 3 * h * int(raw["shared_expert_intermediate_size"])
        always = shared + h * experts  # router
        dense_layers = int(raw.get("first_k_dense_replace") or 0) + len(raw.get("mlp_only_layers") or [])
        dense_layers = min(dense_layers, layers)
        dense_mlp = 3 * h * _field(spec, "intermediate_size") if dense_layers else 0
        moe_layers = layers - dense_layers
    else:
        k = expert = always = 0
        dense_layers, moe_layers = layers, 0
        dense_mlp = 3 * h * _field(spec, "intermediate_size")
    return ModelCompute(
        name=spec.name, layers=layers, hidden_size=h, vocab_size=int(vocab),
        attention_params_per_layer=int(attn), dense_mlp_params_per_layer=int(dense_mlp),
        dense_mlp_layers=int(dense_layers), moe_layers=int(moe_layers), experts=int(experts),
        experts_per_token=int(k), expert_params=int(expert),
        moe_always_params_per_layer=int(always), attn_heads=heads, qk_head_dim=int(qk_dim),
        v_head_dim=int(v_dim), window_layers=spec.window_layers,
        sliding_window=int(spec.sliding_window or 0), dtype_bytes=spec.dtype_bytes,
    )
