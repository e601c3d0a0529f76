"""Small generated traces with shared prefixes, for the engine tests and the measured records.

Each request extends one of a few prefix trees (Zipf-popular roots) with its own blocks and a
final partial block, so a small KV cache sees hits and evictions.  Seeded via SeedSequence.
"""

from __future__ import annotations

import numpy as np

from simkv.trace.model import Trace


def shared_prefix_trace(seed: int, n_requests: int = 120, *, block_tokens: int = 64,
                        n_roots: int = 6, root_blocks: tuple[int, int] = (4, 20),
                        extra_blocks: tuple[int, int] = (0, 8), output_tokens: tuple[int, int] = (1, 8),
                        gap_s: float = 1.0) -> Trace:
    """``n_requests`` requests over ``n_roots`` shared roots; prompts end with a partial block."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    next_id = 1
    roots = []
    for _ in range(n_roots):
        k = int(rng.integers(root_blocks[0], root_blocks[1] + 1))
        roots.append(list(range(next_id, next_id + k)))
        next_id += k
    weights = 1.0 / np.arange(1, n_roots + 1)
    weights /= weights.sum()
    chains, inp = [], []
    for _ in range(n_requests):
        root = roots[int(rng.choice(n_roots, p=weights))]
        extra = int(rng.integers(extra_blocks[0], extra_blocks[1] + 1))
        chain = root + list(range(next_id, next_id + extra + 1))
        next_id += extra + 1
        tail = int(rng.integers(1, block_tokens + 1))
        chains.append(chain)
        inp.append((len(chain) - 1) * block_tokens + tail)
    offsets = np.zeros(n_requests + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chains], out=offsets[1:])
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=np.arange(n_requests) * gap_s, input_tokens=inp,
        output_tokens=rng.integers(output_tokens[0], output_tokens[1] + 1, n_requests),
        block_offsets=offsets, block_hashes=np.concatenate([np.asarray(c, np.uint64) for c in chains]),
        models=("tiny-llama-2l",), model_index=np.zeros(n_requests, dtype=np.int16))
