"""One description of the engine for both ``serve`` and ``validate``.

``serve`` starts vLLM (and LMCache) from an :class:`EngineConfig` and writes it as JSON
(``--engine-config-out``); ``validate --engine-config`` reads the same file, so the LMCache
chunk size and its L1 capacity the prediction uses are the ones the server was started with.
vLLM's own block size and block count are read from the server (``vllm:cache_config_info``).
The L1 capacity is given in the server's units (``--l1-size-gb``, GiB of slab) and turned into
chunks with the model's KV bytes per chunk (``simkv.models.geometry``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from harness.launcher import ServeOptions
from harness.modeldir import resolve_config
from simkv.atomicio import atomic_write_text
from simkv.cache.lmcache_policy import (
    DEFAULT_EVICTION_RATIO,
    DEFAULT_TRIGGER_WATERMARK,
    GIB,
    L1Config,
)
from simkv.errors import InputError
from simkv.models.geometry import spec_from_config
from simkv.validate import check_number, count, input_file, real

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class EngineConfig:
    """What a served engine is: model, vLLM's KV size, LMCache's chunk and L1."""

    model_config: str
    kv_cache_bytes: int
    block_size: int | None = None
    max_model_len: int = 4096
    lmcache: bool = False
    lmcache_chunk_tokens: int = 256
    lmcache_l1_gb: float = 1.0
    lmcache_trigger_watermark: float = DEFAULT_TRIGGER_WATERMARK
    lmcache_eviction_ratio: float = DEFAULT_EVICTION_RATIO

    def serve_options(self, **kw) -> ServeOptions:
        return ServeOptions(model_config=self.model_config, kv_cache_bytes=self.kv_cache_bytes,
                            block_size=self.block_size, max_model_len=self.max_model_len,
                            lmcache=self.lmcache, lmcache_l1_gb=self.lmcache_l1_gb,
                            lmcache_chunk_tokens=self.lmcache_chunk_tokens,
                            lmcache_trigger_watermark=self.lmcache_trigger_watermark,
                            lmcache_eviction_ratio=self.lmcache_eviction_ratio, **kw)

    @classmethod
    def from_serve_options(cls, o: ServeOptions) -> EngineConfig:
        return cls(o.model_config, o.kv_cache_bytes, o.block_size, o.max_model_len, o.lmcache,
                   o.lmcache_chunk_tokens, o.lmcache_l1_gb, o.lmcache_trigger_watermark,
                   o.lmcache_eviction_ratio)

    @property
    def lmcache_l1_bytes(self) -> int:
        return int(self.lmcache_l1_gb * GIB)  # as LMCache computes it

    def chunk_bytes(self) -> int:
        """Bytes of one LMCache chunk object of this model (K and V, every layer)."""
        cfg, _ = resolve_config(self.model_config)
        spec = spec_from_config(cfg, name=str(self.model_config))
        return int(spec.block_bytes(self.lmcache_chunk_tokens))

    def l1_config(self) -> L1Config:
        return L1Config.from_bytes(self.lmcache_l1_bytes, self.chunk_bytes(),
                                   self.lmcache_chunk_tokens,
                                   trigger_watermark=self.lmcache_trigger_watermark,
                                   eviction_ratio=self.lmcache_eviction_ratio)

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps({"schema_version": SCHEMA_VERSION, "kind": "engine_config",
                                            **asdict(self)}, indent=1) + "\n")


#: Bounds of the numeric fields of an engine config file (checked like CLI options).
_FIELD_BOUNDS = {"kv_cache_bytes": count(1, 2**62), "block_size": count(1, 2**20),
                 "max_model_len": count(1, 2**24), "lmcache_chunk_tokens": count(1, 2**20),
                 "lmcache_l1_gb": real(0.0, 1e6, lo_open=True),
                 "lmcache_trigger_watermark": real(0.0, 1.0), "lmcache_eviction_ratio": real(0.0, 1.0)}


def _check_fields(data: dict, path: Path) -> None:
    for name, bound in _FIELD_BOUNDS.items():
        if data.get(name) is not None:
            check_number(data[name], bound, f"field {name}", source=path)
    if not isinstance(data.get("model_config"), str):
        raise InputError("field model_config must be a model name or folder", source=path)
    if not isinstance(data.get("lmcache", False), bool):
        raise InputError("field lmcache must be true or false", source=path)


def load_engine_config(path: Path) -> EngineConfig:
    """Read an engine config written by ``serve --engine-config-out``."""
    input_file(path, "engine config", where="--engine-config")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read engine config: {exc.strerror}", source=path) from None
    except RecursionError:
        raise InputError("not JSON: nested too deeply", source=path) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a 5000-digit integer
        raise InputError(f"not JSON: {str(exc).splitlines()[0][:120]}", source=path) from None
    if not isinstance(data, dict) or data.get("kind") != "engine_config":
        raise InputError("not an engine config (kind: engine_config)", source=path)
    names = {f.name for f in fields(EngineConfig)}
    unknown = sorted(set(data) - names - {"schema_version", "kind"})
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}", source=path)
    _check_fields(data, Path(path))
    try:
        return EngineConfig(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise InputError(str(exc), source=path) from None
