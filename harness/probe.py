"""A calibration probe: a designed trace that spans the prompt lengths the engine takes.

Why: a calibration fitted on one workload's replays only knows the prompts that workload sent.
The generated multi-turn family's prompts are 460-1,650 tokens and mostly cached, so its fit
trades the per-token term against the per-token-times-context term (fits of its replays gave
2.7-11.3 us per token with 0-12.0 ns per context token, the Mooncake slice's 6.3-8.1 us and
7.7-9.4 ns) and then priced the Mooncake slice's longer uncached prompts 19-24% high at p50
(docs/harness.md).  Replayed one at a time beside the workload, the probe pins each term:
cold prompts whose lengths are spread evenly on a log scale from half a block to the
engine's longest (the per-token and context terms), and, after a quarter of them, a request
that shares 25-100% of its whole blocks (the cached term).

Deterministic: the lengths come from the grid; their order and the warm requests from
``numpy.random.SeedSequence(seed)``.
"""

from __future__ import annotations

import numpy as np

from simkv.errors import InputError
from simkv.trace.model import Trace

#: the probe's outputs: a few tokens (the decode step is measured from them), short replays
PROBE_OUTPUT_TOKENS = 4


def probe_trace(max_prompt_tokens: int, *, n_cold: int = 72, block_tokens: int = 64,
                warm_share: float = 0.25, seed: int = 0, model: str = "tiny-llama-2l") -> Trace:
    """``n_cold`` cold prompts from ``block_tokens / 2`` to ``max_prompt_tokens - 4`` tokens
    (room for the outputs), each of ``warm_share`` of them followed by a warm one sharing
    25-100% of its whole blocks plus one block of its own (a cold prompt under one whole
    block, or one whose warm follower would not fit, has none)."""
    if max_prompt_tokens < 2 * block_tokens:
        raise InputError(f"must be at least two blocks ({2 * block_tokens} tokens)",
                         where="--max-prompt-tokens")
    if n_cold < 4:
        raise InputError("a probe needs at least 4 cold prompts", where="--cold")
    if not 0.0 <= warm_share <= 1.0:
        raise InputError("must be within [0, 1]", where="--warm-share")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    longest = max_prompt_tokens - PROBE_OUTPUT_TOKENS
    lengths = np.geomspace(block_tokens / 2, longest, n_cold).round().astype(np.int64)
    rng.shuffle(lengths)
    warm_after = set(rng.choice(n_cold, size=int(round(warm_share * n_cold)), replace=False).tolist())
    chains: list[list[int]] = []
    inp: list[int] = []
    next_id = 1
    for k, length in enumerate(lengths.tolist()):
        n_blocks = -(-length // block_tokens)
        chain = list(range(next_id, next_id + n_blocks))
        next_id += n_blocks
        chains.append(chain)
        inp.append(length)
        whole = length // block_tokens
        if k in warm_after and whole:
            shared = max(1, int(round(whole * rng.uniform(0.25, 1.0))))
            if (shared + 1) * block_tokens <= longest:
                chains.append(chain[:shared] + [next_id])
                next_id += 1
                inp.append(shared * block_tokens + int(rng.integers(1, block_tokens + 1)))
    n = len(chains)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chains], out=offsets[1:])
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=np.arange(n, dtype=np.float64),
        input_tokens=inp, output_tokens=np.full(n, PROBE_OUTPUT_TOKENS),
        block_offsets=offsets,
        block_hashes=np.concatenate([np.asarray(c, np.uint64) for c in chains]),
        models=(model,), model_index=np.zeros(n, dtype=np.int16))
