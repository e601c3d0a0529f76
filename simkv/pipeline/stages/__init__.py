"""simkv's own stages, one module each (registered by ``simkv.pipeline.builtin``)."""
