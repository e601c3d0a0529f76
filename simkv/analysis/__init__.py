"""Analyses that combine layers: trace statistics that need the cache engine live here, above
both ``simkv.trace`` and ``simkv.cache``, so that the trace package never runs the simulator."""
