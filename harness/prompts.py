"""Token-id prompts that reproduce a trace's prefix sharing exactly, and their engine-level ids.

Each distinct block hash of the trace gets ``block_tokens`` token ids: the first ``marker_tokens``
ids spell the hash's dense index (first-appearance order) in base ``vocab - RESERVED``, the rest
are pseudo-random fillers drawn from the hash and the run's ``salt``.  Hashes are prefix-chained,
so two requests share exactly the tokens of their common hash chain: where their chains first
differ, the markers differ (distinct dense indices), hence their token sequences differ within
that block's first ``marker_tokens`` tokens (at its first token when one digit suffices, i.e.
fewer distinct hashes than ``vocab - 3``) and nowhere earlier; no two distinct hashes ever share
a block.  A request's prompt is its blocks' tokens cut to
``input_tokens``.

The engine hashes prompts at its own block size (vLLM on CPU: 128 tokens; LMCache: 256-token
chunks), which need not match the trace's.  :func:`chained_keys` hashes the token sequences we
actually send at any block size, so the prediction is exact rather than re-chunked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from simkv.cache.stream import dense_block_ids
from simkv.errors import InputError
from simkv.hashing import M2, splitmix64_array
from simkv.trace.model import Trace

#: token ids below this are never sent (``<unk> <s> </s>`` of the test tokenizer; most
#: tokenizers keep low ids for specials too)
RESERVED = 3

@dataclass(frozen=True)
class PromptBuilder:
    """Builds request ``i``'s token ids for one trace, vocabulary and salt."""

    trace: Trace
    vocab_size: int
    salt: int = 0

    def __post_init__(self) -> None:
        if self.vocab_size <= RESERVED + 1:
            raise InputError(f"vocabulary of {self.vocab_size} ids is too small", where="vocab")
        if self.trace.block_tokens < self.marker_tokens + 1:
            raise InputError(f"trace blocks of {self.trace.block_tokens} tokens cannot carry a "
                             f"{self.marker_tokens}-token marker plus fillers", where="block_tokens")

    @property
    def base(self) -> int:
        return self.vocab_size - RESERVED

    @property
    def dense(self) -> np.ndarray:
        return dense_block_ids(self.trace)[0]

    @property
    def marker_tokens(self) -> int:
        n_unique = max(dense_block_ids(self.trace)[1], 1)
        digits = 1
        while self.base ** digits < n_unique:
            digits += 1
        return digits

    def block_tokens_of(self, j: int) -> np.ndarray:
        """Tokens of block access ``j`` (a full ``block_tokens``, before cutting)."""
        bt = self.trace.block_tokens
        k = self.marker_tokens
        d = int(self.dense[j])
        out = np.empty(bt, dtype=np.int64)
        for p in range(k):  # most significant digit first
            out[k - 1 - p] = RESERVED + d % self.base
            d //= self.base
        seed = np.uint64(int(self.trace.block_hashes[j])) ^ splitmix64_array(
            np.array([np.uint64(self.salt & 0xFFFFFFFFFFFFFFFF)]))[0]
        pos = np.arange(bt - k, dtype=np.uint64)
        with np.errstate(over="ignore"):
            fill = splitmix64_array(seed * M2 + pos)
        out[k:] = RESERVED + (fill % np.uint64(self.base)).astype(np.int64)
        return out

    def tokens(self, i: int) -> np.ndarray:
        """Request ``i``'s prompt token ids (length ``input_tokens[i]``)."""
        a, b = int(self.trace.block_offsets[i]), int(self.trace.block_offsets[i + 1])
        n = int(self.trace.input_tokens[i])
        if b == a:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.block_tokens_of(j) for j in range(a, b)])[:n]


def chained_keys(tokens: np.ndarray, block_tokens: int, *, full_only: bool = False) -> list[bytes]:
    """Prefix-chained ids of ``tokens`` cut into ``block_tokens`` blocks (the last may be partial
    unless ``full_only``): block k's id covers every token up to its end, as the engines' hashes
    do."""
    n = len(tokens)
    n_blocks = n // block_tokens if full_only else -(-n // block_tokens)
    keys, parent = [], b""
    arr = np.ascontiguousarray(tokens, dtype=np.int64)
    for k in range(n_blocks):
        h = hashlib.blake2b(parent, digest_size=16)
        h.update(arr[k * block_tokens:(k + 1) * block_tokens].tobytes())
        parent = h.digest()
        keys.append(parent)
    return keys


def key_to_u64(key: bytes) -> int:
    return int.from_bytes(key[:8], "little")
