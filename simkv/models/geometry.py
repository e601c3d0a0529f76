"""KV geometry: how many bytes of KV cache a token costs for a model, from its config.json.

Rules (the LMCache KV-size calculator's, plus what it leaves out):

- standard attention and GQA: ``2 x layers x kv_heads x head_dim x dtype_bytes`` per token,
  with ``head_dim = hidden_size / num_attention_heads`` unless the config sets ``head_dim``;
- MLA (DeepSeek-V3, Kimi-K2; detected by ``kv_lora_rank``): one latent per layer,
  ``layers x (kv_lora_rank + qk_rope_head_dim) x dtype_bytes`` per token (no factor 2);
- sliding-window / hybrid layers (gpt-oss ``layer_types``): a window layer stores at most
  ``sliding_window`` tokens of a prefix, so a prefix of T tokens costs
  ``full_layers x per_layer x T + window_layers x per_layer x min(T, window)``;
- an fp8 KV cache halves bf16's bytes (``kv_cache_dtype="fp8"``);
- tensor parallelism: KV heads are sharded across ranks (a rank holds at least one head, so
  heads are replicated when ``tp > kv_heads``); the MLA latent is replicated on every rank.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from simkv.errors import InputError
from simkv.validate import check_number, count, input_file

#: Any config dimension beyond this is corrupt (products of them must stay within int64).
MAX_DIM = 2**31

_DTYPE_BYTES = {"float32": 4, "fp32": 4, "float16": 2, "fp16": 2, "half": 2, "bfloat16": 2,
                "bf16": 2, "fp8": 1, "float8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "int8": 1}


@dataclass(frozen=True)
class ModelSpec:
    """The fields of a model's config that KV sizing and the latency model need."""

    name: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    dtype_bytes: int = 2
    kv_dtype_bytes: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    sliding_window: int | None = None
    window_layers: int = 0
    tensor_parallel: int = 1
    vocab_size: int | None = None
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # -- derived
    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def kv_element_bytes(self) -> int:
        return self.kv_dtype_bytes if self.kv_dtype_bytes is not None else self.dtype_bytes

    @property
    def full_layers(self) -> int:
        return self.num_layers - self.window_layers

    def kv_bytes_per_token_per_layer(self) -> float:
        """KV bytes one token costs in one layer on one GPU (after TP sharding)."""
        if self.is_mla:
            return float((self.kv_lora_rank + (self.qk_rope_head_dim or 0)) * self.kv_element_bytes)
        heads_per_rank = max(1.0, self.num_kv_heads / self.tensor_parallel)
        return 2.0 * heads_per_rank * self.head_dim * self.kv_element_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        """Marginal KV bytes per token of a long prefix (full-attention layers only), per GPU."""
        return self.full_layers * self.kv_bytes_per_token_per_layer()

    def kv_bytes(self, tokens: int) -> float:
        """Exact KV bytes of a ``tokens``-long prefix, window layers capped at the window, per GPU."""
        per_layer = self.kv_bytes_per_token_per_layer()
        window = min(tokens, self.sliding_window or 0)
        return self.full_layers * per_layer * tokens + self.window_layers * per_layer * window

    def kv_bytes_all_ranks(self, tokens: int) -> float:
        """KV bytes of a prefix summed over all tensor-parallel ranks (what a store must hold)."""
        if self.tensor_parallel == 1:
            return self.kv_bytes(tokens)
        return replace(self, tensor_parallel=1).kv_bytes(tokens) * (
            self.tensor_parallel if self.is_mla or self.num_kv_heads < self.tensor_parallel else 1)

    def block_bytes(self, block_tokens: int) -> int:
        """Bytes a cache block of ``block_tokens`` occupies.

        Window layers add at most ``sliding_window`` tokens per cached prefix, not per block;
        that constant is left out of block accounting (documented approximation).
        """
        return int(round(self.kv_bytes_per_token * block_tokens))

    def with_options(self, *, kv_dtype: str | None = None, tensor_parallel: int | None = None) -> ModelSpec:
        """A copy with an fp8/bf16 KV cache or a tensor-parallel degree."""
        out = self
        if kv_dtype is not None:
            if kv_dtype.lower() not in _DTYPE_BYTES:
                raise InputError(f"unknown KV dtype {kv_dtype!r} (valid: {', '.join(sorted(_DTYPE_BYTES))})",
                                 where="kv_dtype")
            out = replace(out, kv_dtype_bytes=_DTYPE_BYTES[kv_dtype.lower()])
        if tensor_parallel is not None:
            if tensor_parallel < 1:
                raise InputError("tensor_parallel must be >= 1", where="tensor_parallel")
            out = replace(out, tensor_parallel=int(tensor_parallel))
        return out


def _req(cfg: dict, key: str, source: str) -> Any:
    if key not in cfg:
        raise InputError(f"missing field {key!r}", source=source)
    return cfg[key]


def _positive_int(cfg: dict, key: str, source: str, default: Any = None) -> int:
    value = cfg.get(key, default) if default is not None else _req(cfg, key, source)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"field {key!r} must be a positive integer, got {value!r:.60}",
                         source=source)
    return int(check_number(value, count(1, MAX_DIM), f"field {key!r}", source=source))


def _optional_int(cfg: dict, key: str, source: str) -> int | None:
    """A positive integer field that may be absent or null (never 0 meaning "default")."""
    if cfg.get(key) is None:
        return None
    return _positive_int(cfg, key, source)


def _text_config(cfg: dict, src: str) -> dict:
    """Multimodal configs nest the language model's fields under ``text_config``."""
    if "text_config" in cfg and "num_hidden_layers" not in cfg:
        inner = cfg["text_config"]
        if not isinstance(inner, dict):
            raise InputError(f"field 'text_config' must be an object, got {inner!r:.60}", source=src)
        return {**inner, **{k: v for k, v in cfg.items() if k == "torch_dtype"}}
    return cfg


def spec_from_config(cfg: dict[str, Any], *, name: str, source: str = "") -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config.json dictionary."""
    src = source or name
    if not isinstance(cfg, dict):
        raise InputError("config must be a JSON object", source=src)
    cfg = _text_config(cfg, src)
    layers = _positive_int(cfg, "num_hidden_layers", src)
    hidden = _positive_int(cfg, "hidden_size", src)
    heads = _positive_int(cfg, "num_attention_heads", src)
    kv_heads = _positive_int(cfg, "num_key_value_heads", src, default=heads)
    head_dim = _optional_int(cfg, "head_dim", src)
    if head_dim is None:
        head_dim = hidden // heads
        if head_dim <= 0:
            raise InputError(f"hidden_size / num_attention_heads = {hidden}/{heads} is < 1; "
                             "set field 'head_dim'", source=src)
    dtype = cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"
    if not isinstance(dtype, str):
        raise InputError(f"field 'torch_dtype' must be a dtype name, got {dtype!r:.60}", source=src)
    dtype = dtype.lower()
    if dtype not in _DTYPE_BYTES:
        raise InputError(f"field 'torch_dtype' has unknown dtype {dtype!r}", source=src)
    kv_dtype = cfg.get("kv_cache_dtype")
    if kv_dtype is not None and not isinstance(kv_dtype, str):
        raise InputError(f"field 'kv_cache_dtype' must be a dtype name, got {kv_dtype!r:.60}",
                         source=src)
    window_layers = 0
    window = cfg.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if layer_types is not None:
        if not isinstance(layer_types, list) or len(layer_types) != layers:
            raise InputError("field 'layer_types' must list one type per layer", source=src)
        window_layers = sum(1 for t in layer_types if "sliding" in str(t))
    elif window and cfg.get("use_sliding_window", True) and cfg.get("model_type") in ("mistral",):
        window_layers = layers
    if window_layers:
        window = _positive_int(cfg, "sliding_window", src)
    kv_lora_rank = _optional_int(cfg, "kv_lora_rank", src)
    rope = _optional_int(cfg, "qk_rope_head_dim", src) if kv_lora_rank is not None else None
    vocab = _optional_int(cfg, "vocab_size", src)
    spec = ModelSpec(
        name=name, num_layers=layers, hidden_size=hidden, num_attention_heads=heads,
        num_kv_heads=kv_heads, head_dim=head_dim, dtype_bytes=_DTYPE_BYTES[dtype],
        kv_lora_rank=kv_lora_rank, qk_rope_head_dim=rope if kv_lora_rank is not None else None,
        sliding_window=window if window_layers else None, window_layers=window_layers,
        vocab_size=vocab, source=str(cfg.get("_source", source)), raw=dict(cfg),
    )
    if kv_dtype:
        spec = spec.with_options(kv_dtype=str(kv_dtype))
    return spec


def _catalogue_dir():
    return resources.files("simkv.models") / "catalogue"


def catalogue_names() -> list[str]:
    """Names of the shipped model configs."""
    return sorted(p.name[:-5] for p in _catalogue_dir().iterdir() if p.name.endswith(".json"))


def load_config_file(path: Path) -> dict[str, Any]:
    path = input_file(path, "model config")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read model config: {exc.strerror}", source=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno}: {exc.msg}", source=path) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", source=path) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InputError(f"invalid JSON: {str(exc).splitlines()[0]}", source=path) from None


def get_model(name_or_path: str | Path) -> ModelSpec:
    """A model by catalogue name, or from a config.json file or a directory holding one."""
    key = str(name_or_path)
    if key in catalogue_names():
        ref = _catalogue_dir() / f"{key}.json"
        return spec_from_config(json.loads(ref.read_text()), name=key, source=f"catalogue:{key}")
    path = Path(key)
    try:
        if path.is_dir():
            path = path / "config.json"
        exists = path.is_file()
    except OSError as exc:  # a name too long for the filesystem, ...
        raise InputError(f"unknown model (not a readable path: {exc.strerror})",
                         where="model") from None
    if path.suffix == ".json" or exists:
        if not exists:
            raise InputError("model config file not found", source=path)
        return spec_from_config(load_config_file(path), name=path.parent.name if path.name == "config.json" else path.stem,
                                source=str(path))
    raise InputError(f"unknown model {key!r:.80} (catalogue: {', '.join(catalogue_names())}; "
                     "or give a path to a config.json)", where="model")


def kv_bytes_per_gib_tokens(spec: ModelSpec) -> float:
    """Tokens that fit in one GiB of KV cache (for `simkv models show`)."""
    return (1024**3) / spec.kv_bytes_per_token if spec.kv_bytes_per_token else math.inf
