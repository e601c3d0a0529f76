"""Every hash simkv uses, in one module: mixers, block-hash chains, name keys.

The variants differ on purpose and each is kept bit-exact (tests/unit/test_hashing.py pins
known outputs, the splitmix64 ones against its published test vectors):

- ``mix64``: a splitmix64 step (add the golden gamma, then the finaliser); numba, for the
  block-hash chains below and the workload generator's ids;
- ``splitmix64_array``: the same step on numpy arrays (the harness's prompt filler tokens);
- ``finalize64`` / ``finalize64_int``: the finaliser alone, on arrays (SHARDS spatial
  sampling of block ids) and on Python ints (the storage levels' template-version salts,
  ``template_salt``);
- ``growth_rehash``: the cheaper two-round mix that gives growth copy ``k`` fresh hashes;
- ``fibonacci_hash``: multiplicative hashing of a key to a hash-table slot (dense ids);
- ``route_hash``: the harness's endpoint routing of a prefix key (Python ints, unbounded);
- ``key_of`` / ``blake2b_key``: stable keys of names and text pieces (never Python's ``hash()``).

**Chained (prefix) hash.**  The hash of a block is the hash of the whole prompt from its first
token up to the block's *end*, seeded with a root salt (model, plus the tenant when tenants are
isolated, like vLLM's ``cache_salt``).  It is computed incrementally, so it covers the parent's
hash and the block's own content exactly as an engine's chain does, and two blocks are equal iff
their whole prefixes (and salts) are equal.  Because the value depends only on the content up to
the block end, not on where earlier block boundaries fell, the chain at block size ``B`` is the
chain at ``b`` (``b`` divides ``B``) sampled at every ``B/b``-th block: re-chunking to a coarser
size is exact, bit for bit (see ``simkv.trace.rechunk``).

- Segments (the generator): a prompt is a list of *segments* (``id``, ``length``): template
  version 2 of system prompt 3, document 881, the user message of turn 4 of session 17...  The
  state after complete segments is ``S_k = mix(mix(S_{k-1} ^ id_k) ^ len_k)``; the hash at a
  position ``p`` inside segment ``k`` is ``mix(mix(S_{k-1} ^ id_k) ^ (p - start_k))`` (so it is
  ``S_k`` at the segment's end).  No token ids are needed: O(1) per block.
- Tokens (the request-log importer): ``S_p = mix(S_{p-1} ^ token_p)``; the block hash is
  ``S`` at the block end.

**Content hash** (unchained, for CacheBlend-style chunk reuse).  A block is cut into units of
``unit_tokens`` (16 when the block size is a multiple of 16, otherwise ``gcd(B, 16)``), counted
from the block start.  A unit's hash folds the pieces it covers, seeded with the same salt:
``u = mix(mix(salt ^ seg_id) ^ (lo << 32 | hi))`` per piece (``lo``/``hi``: token offsets within
the segment), or ``mix(u ^ token)`` per token.  The block's content hash is the polynomial
``sum_i u_i * P^(m-1-i) mod 2^64`` over its ``m`` units, so concatenating blocks composes:
``C(A || B) = C(A) * P^m(B) + C(B)``.  The same content gives the same content hash wherever
it appears (after any prefix) as long as it sits at the same offset within a block, i.e. when
content is block-aligned, which is what a chunk-level cache sees.

``mix`` is ``mix64``, a splitmix64 step.  The chain kernels are numba-compiled (``cache=True``).
"""

from __future__ import annotations

import hashlib
import math
import zlib

import numba
import numpy as np

#: splitmix64's gamma, 2^64 / golden ratio (also Fibonacci hashing's multiplier)
GOLDEN_INT = 0x9E3779B97F4A7C15
GOLDEN = np.uint64(GOLDEN_INT)
MASK64 = (1 << 64) - 1
_M1_INT = 0xBF58476D1CE4E5B9
_M2_INT = 0x94D049BB133111EB
M1 = np.uint64(_M1_INT)
M2 = np.uint64(_M2_INT)
#: Odd multiplier of the content polynomial.
POLY = np.uint64(0xC2B2AE3D27D4EB4F)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)

#: Unit of content hashing (tokens) for block sizes that are multiples of it.
CONTENT_UNIT_TOKENS = 16


def content_unit_tokens(block_tokens: int) -> int:
    """The content-hash unit for a block size (16 for multiples of 16)."""
    return math.gcd(int(block_tokens), CONTENT_UNIT_TOKENS)


def blake2b_key(data: bytes, digest_bytes: int = 8) -> int:
    """A stable little-endian key of ``digest_bytes`` bytes of blake2b (text pieces, names)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=digest_bytes).digest(), "little")


def key_of(*parts: object) -> int:
    """A stable 64-bit key for names (model names, kinds): blake2b, never Python's hash()."""
    return blake2b_key("\x1f".join(str(p) for p in parts).encode())


def finalize64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser alone on a uint64 array (wrapping): SHARDS spatial sampling."""
    x = np.asarray(x).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> _S30
        x *= M1
        x ^= x >> _S27
        x *= M2
        x ^= x >> _S31
    return x


def finalize64_int(x: int) -> int:
    """``finalize64`` of one Python int (taken mod 2^64): storage levels' version salts."""
    x &= MASK64
    x ^= x >> 30
    x = (x * _M1_INT) & MASK64
    x ^= x >> 27
    x = (x * _M2_INT) & MASK64
    return x ^ (x >> 31)


def template_salt(component: str | None, version: int) -> int:
    """The salt a template change of ``component`` to ``version`` XORs into later block ids."""
    return finalize64_int(zlib.crc32(f"{component}:{version}".encode()) + (version << 32))


def splitmix64_array(x: np.ndarray) -> np.ndarray:
    """``mix64`` on a uint64 array with numpy (wrapping): the harness's prompt filler tokens."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + GOLDEN
        z = (z ^ (z >> _S30)) * M1
        z = (z ^ (z >> _S27)) * M2
        return z ^ (z >> _S31)


def growth_rehash(h: np.ndarray, k: int) -> np.ndarray:
    """Fresh hashes for growth copy ``k`` (copy 0 keeps the originals): two mixing rounds."""
    if k == 0:
        return h
    with np.errstate(over="ignore"):
        x = h ^ (np.uint64(k) * GOLDEN)
        x = (x ^ (x >> _S31)) * M1
        return x ^ (x >> np.uint64(29))


def route_hash(key: int) -> int:
    """The harness's routing key of a prompt's first block (Python ints: not reduced mod 2^64)."""
    return key * GOLDEN_INT >> 7


@numba.njit(cache=True, inline="always")
def fibonacci_hash(k):  # pragma: no cover - compiled
    """Multiplicative (Fibonacci) hash of a uint64 key; take the low bits for a table slot."""
    return (k * GOLDEN) >> np.uint64(17)


@numba.njit(cache=True, inline="always")
def mix64(x):  # pragma: no cover - compiled
    z = x + GOLDEN
    z = (z ^ (z >> _S30)) * M1
    z = (z ^ (z >> _S27)) * M2
    return z ^ (z >> _S31)


@numba.njit(cache=True)
def mix_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Elementwise ``mix(mix(a) ^ b)`` of two uint64 arrays (ids from several keys)."""
    out = np.empty(a.shape[0], dtype=np.uint64)
    for i in range(a.shape[0]):
        out[i] = mix64(mix64(a[i]) ^ b[i])
    return out


def combine(a, b) -> np.ndarray:
    """``mix(mix(a) ^ b)`` for uint64 scalars or arrays (broadcast)."""
    a_arr, b_arr = np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)
    shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)

    def full(x: np.ndarray) -> np.ndarray:
        if x.shape == shape and x.flags.c_contiguous and x.flags.writeable:
            return x.ravel()
        return np.broadcast_to(x, shape).copy().ravel()

    return mix_array(full(a_arr), full(b_arr)).reshape(shape)


@numba.njit(cache=True)
def hash_segments(seg_offsets, seg_ids, seg_lens, seg_tags, salts, block_offsets, block_tokens,
                  unit_tokens, out_hashes, out_content, out_tags):  # pragma: no cover - compiled
    """Chained hashes, content hashes and first-token tags of every block of every request.

    Request ``r`` is the segment list ``seg_*[seg_offsets[r]:seg_offsets[r+1]]`` (all lengths
    >= 1) and owns blocks ``block_offsets[r]:block_offsets[r+1]``.
    """
    n_req = seg_offsets.shape[0] - 1
    B = block_tokens
    U = unit_tokens
    memo_size = 1 << 20
    memo_mask = np.uint64(memo_size - 1)
    memo_keys = np.zeros(memo_size, dtype=np.uint64)
    memo_vals = np.zeros(memo_size, dtype=np.uint64)
    memo_used = np.zeros(memo_size, dtype=np.bool_)
    for r in range(n_req):
        s0 = seg_offsets[r]
        s1 = seg_offsets[r + 1]
        n = 0
        for k in range(s0, s1):
            n += seg_lens[k]
        salt = salts[r]
        o = block_offsets[r]
        nb = block_offsets[r + 1] - o
        # prefix-state pointer: segment k (absolute index) holds the block end
        k = s0
        kstart = 0
        base_p = mix64(salt ^ seg_ids[k])
        # content pointer: segment kc holds the block's first token
        kc = s0
        kc_start = 0
        for b in range(nb):
            a = b * B
            e = min(a + B, n)
            while kc_start + seg_lens[kc] <= a:
                kc_start += seg_lens[kc]
                kc += 1
            out_tags[o + b] = seg_tags[kc]
            while kstart + seg_lens[k] < e:
                state = mix64(base_p ^ np.uint64(seg_lens[k]))
                kstart += seg_lens[k]
                k += 1
                base_p = mix64(state ^ seg_ids[k])
            h = mix64(base_p ^ np.uint64(e - kstart))
            out_hashes[o + b] = h
            # equal chained hashes mean equal prefixes, so equal block content: a small
            # direct-mapped memo skips recomputing repeated blocks (values are identical)
            slot = np.int64((h >> _S32) & memo_mask)
            if memo_used[slot] and memo_keys[slot] == h:
                out_content[o + b] = memo_vals[slot]
                continue
            memo_used[slot] = True
            memo_keys[slot] = h
            c = _block_content(seg_ids, seg_lens, salt, kc, kc_start, a, e, U)
            out_content[o + b] = c
            memo_vals[slot] = c


@numba.njit(cache=True, inline="always")
def _block_content(seg_ids, seg_lens, salt, kc, kc_start, a, e, U):  # pragma: no cover - compiled
    """Content hash of tokens ``[a, e)``; segment ``kc`` (starting at ``kc_start``) holds ``a``."""
    c = np.uint64(0)
    pos = a
    if kc_start + seg_lens[kc] >= e:
        # fast path (same values): the whole block lies in one segment
        cb = mix64(salt ^ seg_ids[kc])
        while pos < e:
            ue = min(pos + U, e)
            packed = (np.uint64(pos - kc_start) << _S32) | np.uint64(ue - kc_start)
            c = c * POLY + mix64(cb ^ packed)
            pos = ue
        return c
    kk = kc
    ks = kc_start
    while pos < e:
        ue = min(pos + U, e)
        st = salt
        p = pos
        while p < ue:
            send = ks + seg_lens[kk]
            hi = min(send, ue)
            packed = (np.uint64(p - ks) << _S32) | np.uint64(hi - ks)
            st = mix64(mix64(st ^ seg_ids[kk]) ^ packed)
            p = hi
            if p == send:
                ks = send
                kk += 1
        c = c * POLY + st
        pos = ue
    return c


@numba.njit(cache=True)
def hash_tokens(token_offsets, tokens, salts, block_offsets, block_tokens, unit_tokens,
                out_hashes, out_content):  # pragma: no cover - compiled
    """Chained and content hashes of token-id prompts (request-log importer)."""
    n_req = token_offsets.shape[0] - 1
    B = block_tokens
    U = unit_tokens
    for r in range(n_req):
        t0 = token_offsets[r]
        n = token_offsets[r + 1] - t0
        salt = salts[r]
        o = block_offsets[r]
        state = salt
        for b in range(block_offsets[r + 1] - o):
            a = b * B
            e = min(a + B, n)
            c = np.uint64(0)
            pos = a
            while pos < e:
                ue = min(pos + U, e)
                st = salt
                for t in range(pos, ue):
                    tok = np.uint64(tokens[t0 + t])
                    st = mix64(st ^ tok)
                    state = mix64(state ^ tok)
                c = c * POLY + st
                pos = ue
            out_hashes[o + b] = state
            out_content[o + b] = c
