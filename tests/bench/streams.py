"""Generated benchmark streams (seeded): prefix-sharing requests of ~10 million block accesses."""

from __future__ import annotations

import numpy as np

from simkv.trace.model import Trace


def prefix_stream(seed: int = 0, n_requests: int = 200_000, prefix_blocks: int = 30,
                  n_prefixes: int = 2_000, unique_blocks: int = 20, zipf_a: float = 1.2,
                  block_tokens: int = 16) -> Trace:
    """Each request: one of ``n_prefixes`` shared prefixes (Zipf) then its own fresh blocks."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    choice = (rng.zipf(zipf_a, n_requests) - 1) % n_prefixes
    per_req = prefix_blocks + unique_blocks
    hashes = np.empty((n_requests, per_req), dtype=np.uint64)
    hashes[:, :prefix_blocks] = (choice[:, None] * prefix_blocks + np.arange(prefix_blocks)).astype(np.uint64)
    base = n_prefixes * prefix_blocks
    hashes[:, prefix_blocks:] = (base + np.arange(n_requests * unique_blocks)).reshape(
        n_requests, unique_blocks).astype(np.uint64)
    # opaque 64-bit ids, as real traces have
    hashes = hashes * np.uint64(0x9E3779B97F4A7C15) + np.uint64(12345)
    offsets = np.arange(n_requests + 1, dtype=np.int64) * per_req
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=np.arange(n_requests, dtype=np.float64) * 10 / 1000,
        input_tokens=np.full(n_requests, per_req * block_tokens), output_tokens=np.ones(n_requests),
        block_offsets=offsets, block_hashes=hashes.ravel())
