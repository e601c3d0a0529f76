"""KV geometry catalogue: bytes of KV cache per token from a model's config.json."""

from simkv.models.geometry import ModelSpec, catalogue_names, get_model, spec_from_config

__all__ = ["ModelSpec", "catalogue_names", "get_model", "spec_from_config"]
