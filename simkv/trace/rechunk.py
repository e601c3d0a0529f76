"""Re-chunk a Trace to another block size: exactly to a coarser one, approximately to a finer one.

**Coarser (exact).**  The target size ``B`` must be a multiple of the trace's ``b``.  Coarse
block ``k`` of a request covers tokens ``[kB, min((k+1)B, n))``; it ends where fine block
``min((k+1)B/b, nf) - 1`` ends (``nf`` = the request's fine blocks), and a prefix-chained hash
identifies everything up to its block's end, so the coarse block takes that fine block's
chained hash:

- the partial final block: when ``n`` is not a multiple of ``B`` the last coarse block ends at
  ``n``, where the last fine block (itself partial or not) ends, so it takes the last fine
  hash.  Two coarse blocks are equal iff their prefixes up to their ends are, exactly as if the
  tokens had been hashed at size ``B``;
- for simkv's own chains (generator, request-log importer) the hash is position-canonical
  (``simkv.hashing``), so the result is bit-for-bit what generating or importing at
  size ``B`` gives; for third-party chains (Alibaba, Mooncake) the values are the fine ids, not
  what that engine would compute at ``B``, but which blocks are equal (all a cache sees) is
  exact, assuming the source's final partial block hash covers its own tokens (it does for
  engine-style chains);
- tags: the tag of the coarse block's first fine block (the first-token rule the generator
  uses);
- content hashes compose exactly: ``C = fold(C * P^m_i + c_i)`` over the fine blocks, ``m_i``
  = content units in fine block ``i`` (``trace.meta["content_hash_unit_tokens"]``, else one
  unit per fine block), equal to hashing at size ``B`` with the same unit.

**Finer (approximate).**  ``B`` must divide ``b``.  The fine blocks inside a coarse block are
unknown; each one gets a hash derived from its coarse block's (``mix(mix(h) ^ j)`` for
position ``j``), except the last, which keeps the coarse hash (so coarsening again gives the
original chain back).  A fine block is therefore shared only when its whole coarse block is:
prefix hits in tokens are those of the coarse trace (conservative: a real engine at the finer
size can only find more).  Content hashes are derived the same way and tags are copied.
"""

from __future__ import annotations

import numba
import numpy as np

from simkv.errors import InputError
from simkv.hashing import POLY, combine
from simkv.trace.model import Trace


@numba.njit(cache=True)
def _compose(first, last, content, units, powers):  # pragma: no cover - compiled
    out = np.empty(first.shape[0], dtype=np.uint64)
    for k in range(first.shape[0]):
        c = np.uint64(0)
        for i in range(first[k], last[k] + 1):
            c = c * powers[units[i]] + content[i]
        out[k] = c
    return out


def _coarse_layout(trace: Trace, block_tokens: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coarse block offsets and, per coarse block, its first and last fine block index."""
    ratio = block_tokens // trace.block_tokens
    n_c = -(-trace.input_tokens // block_tokens)
    off_c = np.zeros(trace.n_requests + 1, dtype=np.int64)
    np.cumsum(n_c, out=off_c[1:])
    req = np.repeat(np.arange(trace.n_requests), n_c)
    k = np.arange(off_c[-1], dtype=np.int64) - off_c[:-1][req]
    fine_start = trace.block_offsets[:-1][req]
    n_f = np.diff(trace.block_offsets)[req]
    first = fine_start + k * ratio
    last = fine_start + np.minimum((k + 1) * ratio, n_f) - 1
    return off_c, first, last


def coarser(trace: Trace, block_tokens: int) -> Trace:
    """Exact re-chunking to a multiple of the trace's block size (see the module docstring)."""
    b = trace.block_tokens
    if block_tokens % b:
        raise InputError(f"a coarser block size must be a multiple of {b}, got {block_tokens}",
                         where="--block-tokens")
    if block_tokens == b:
        return trace
    off_c, first, last = _coarse_layout(trace, block_tokens)
    content = None
    meta = dict(trace.meta)
    if trace.content_hashes is not None:
        unit = int(trace.meta.get("content_hash_unit_tokens") or b)
        units = -(-trace.block_token_counts() // unit)
        powers = np.ones(int(units.max(initial=0)) + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):  # arithmetic mod 2^64 on purpose
            for i in range(1, len(powers)):
                powers[i] = powers[i - 1] * POLY
        content = _compose(first, last, trace.content_hashes, units, powers)
        meta["content_hash_unit_tokens"] = unit
    meta["rechunked_from_block_tokens"] = b
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=trace.arrival_s, session_ids=trace.session_ids,
        tenant_ids=trace.tenant_ids, model_index=trace.model_index, models=trace.models,
        input_tokens=trace.input_tokens, output_tokens=trace.output_tokens, block_offsets=off_c,
        block_hashes=trace.block_hashes[last],
        block_tags=None if trace.block_tags is None else trace.block_tags[first],
        content_hashes=content, meta=meta)


def finer(trace: Trace, block_tokens: int) -> Trace:
    """Approximate re-chunking to a divisor of the trace's block size (module docstring)."""
    b = trace.block_tokens
    if block_tokens <= 0 or b % block_tokens:
        raise InputError(f"a finer block size must divide {b}, got {block_tokens}",
                         where="--block-tokens")
    if block_tokens == b:
        return trace
    n_f = -(-trace.input_tokens // block_tokens)
    off_f = np.zeros(trace.n_requests + 1, dtype=np.int64)
    np.cumsum(n_f, out=off_f[1:])
    req = np.repeat(np.arange(trace.n_requests), n_f)
    i = np.arange(off_f[-1], dtype=np.int64) - off_f[:-1][req]
    ratio = b // block_tokens
    coarse = trace.block_offsets[:-1][req] + i // ratio
    # last fine block of its coarse block: the next one starts a new coarse block or is past the end
    is_last = ((i + 1) % ratio == 0) | (i + 1 == n_f[req])
    j = (i % ratio + 1).astype(np.uint64)

    def derive(values: np.ndarray) -> np.ndarray:
        parent = values[coarse]
        return np.where(is_last, parent, combine(parent, j))

    meta = dict(trace.meta)
    meta["rechunked_from_block_tokens"] = b
    meta["rechunk_approximate"] = True
    meta.pop("content_hash_unit_tokens", None)
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=trace.arrival_s, session_ids=trace.session_ids,
        tenant_ids=trace.tenant_ids, model_index=trace.model_index, models=trace.models,
        input_tokens=trace.input_tokens, output_tokens=trace.output_tokens, block_offsets=off_f,
        block_hashes=derive(trace.block_hashes),
        block_tags=None if trace.block_tags is None else trace.block_tags[coarse],
        content_hashes=None if trace.content_hashes is None else derive(trace.content_hashes),
        meta=meta)


def rechunk(trace: Trace, block_tokens: int) -> Trace:
    """Coarser when ``block_tokens`` is a multiple of the trace's size, finer when it divides it."""
    block_tokens = int(block_tokens)
    if block_tokens <= 0:
        raise InputError("must be > 0", where="--block-tokens")
    if block_tokens >= trace.block_tokens:
        return coarser(trace, block_tokens)
    return finer(trace, block_tokens)
