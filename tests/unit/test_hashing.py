"""simkv.hashing: every variant pinned to known outputs, so moving or rewriting one is bit-exact.

Sources of the expected values:
- splitmix64's published test vectors (Vigna's ``splitmix64.c``, seed 0): the first two outputs
  are 0xE220A8397B1DCDAF and 0x6E789E6AA1B965F4, i.e. ``mix64(0)`` and ``mix64(GOLDEN)``;
- plain Python integer reimplementations written here from each docstring's formula;
- values recorded from the implementations *before* they were moved into this module
  (commit 9c9024c: workloads/hashing.py, sizing/stream.py, sizing/hierarchy.py,
  economics/growth.py, harness/prompts.py), which every trace, sample and salt depends on.
"""

from __future__ import annotations

import zlib

import numpy as np

from simkv.hashing import (
    GOLDEN_INT,
    MASK64,
    blake2b_key,
    combine,
    fibonacci_hash,
    finalize64,
    finalize64_int,
    growth_rehash,
    hash_segments,
    hash_tokens,
    key_of,
    route_hash,
    splitmix64_array,
    template_salt,
)

XS = [0, 1, 0x9E3779B97F4A7C15, 0xFFFFFFFFFFFFFFFF, 123456789]
U = np.array(XS, dtype=np.uint64)


def _py_finalize(x: int) -> int:
    x &= MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def _hexes(a) -> list[str]:
    return [hex(int(v)) for v in a]


def test_splitmix64_matches_published_vectors():
    out = splitmix64_array(np.array([0, GOLDEN_INT], dtype=np.uint64))
    assert _hexes(out) == ["0xe220a8397b1dcdaf", "0x6e789e6aa1b965f4"]


def test_finalizers_agree_with_a_python_reimplementation_and_with_each_other():
    expected = [_py_finalize(x) for x in XS]
    assert [int(v) for v in finalize64(U)] == expected
    assert [finalize64_int(x) for x in XS] == expected
    # the finaliser of x + gamma is the splitmix64 step of x
    assert [int(v) for v in splitmix64_array(U)] == [_py_finalize(x + GOLDEN_INT) for x in XS]


def test_values_recorded_before_the_move():
    assert _hexes(finalize64(U)) == ["0x0", "0x5692161d100b05e5", "0xe220a8397b1dcdaf",
                                     "0xb4d055fcf2cbbd7b", "0xf21c87d4233ffd60"]
    assert _hexes(splitmix64_array(U)) == ["0xe220a8397b1dcdaf", "0x910a2dec89025cc1",
                                           "0x6e789e6aa1b965f4", "0xe4d971771b652c20",
                                           "0x223c74d93deb7679"]
    assert _hexes(combine(U, np.uint64(7))) == ["0x64bf61b512ffabe7", "0x7716da39cba275b2",
                                                "0x4e33eab93279ff1a", "0x19f20a9bb46150b6",
                                                "0xd49f1d3284731437"]
    assert _hexes(growth_rehash(U, 3)) == ["0x494d77f5ef1c94d2", "0x89f5308ec73bc1e2",
                                           "0xa3da29c7350a9711", "0x35492aec0f3e7c02",
                                           "0x6a8ccfdf262aa981"]
    assert hex(template_salt("system", 2)) == "0xb1758bdde8fcf6f3"
    assert hex(template_salt(None, 1)) == "0xefb1d6310a7b47bc"
    assert hex(key_of("model", "llama-3.1-8b")) == "0x6700e44b57b6f6b3"


def test_growth_rehash_formula_and_copy_zero():
    assert growth_rehash(U, 0) is U
    for x, got in zip(XS, growth_rehash(U, 3), strict=True):
        y = x ^ ((3 * GOLDEN_INT) & MASK64)
        y = ((y ^ (y >> 31)) * 0xBF58476D1CE4E5B9) & MASK64
        assert int(got) == y ^ (y >> 29)


def test_template_salt_formula():
    v = 5
    assert template_salt("tools", v) == _py_finalize(zlib.crc32(b"tools:5") + (v << 32))


def test_route_and_table_hashes():
    assert [route_hash(k) % 3 for k in (0, 1, 2**63 + 5, 987654321)] == [0, 2, 2, 2]
    assert hex(route_hash(987654321)) == "0x48c40cc707038f57423ca5"  # unbounded Python int
    for x in XS:
        assert int(fibonacci_hash(np.uint64(x))) == ((x * GOLDEN_INT) & MASK64) >> 17


def test_blake2b_keys():
    import hashlib

    d = hashlib.blake2b(b"hello", digest_size=4).digest()
    assert blake2b_key(b"hello", 4) == int.from_bytes(d, "little")
    assert key_of("a", "b") == blake2b_key(b"a\x1fb")


def test_chain_kernels_recorded_before_the_move():
    off = np.array([0, 5, 12], dtype=np.int64)
    toks = np.arange(12, dtype=np.int64) * 7 + 1
    salts = np.array([11, 22], dtype=np.uint64)
    h, c = np.empty(4, np.uint64), np.empty(4, np.uint64)
    hash_tokens(off, toks, salts, np.array([0, 2, 4], dtype=np.int64), 4, 2, h, c)
    assert _hexes(h) == ["0x76495bcd81eeb711", "0xe79745378f70236a", "0xf68f601888a529b2",
                         "0x999ecdeba9f1398"]
    assert _hexes(c) == ["0x26e5e3d362daf191", "0xc80de0f9d4d60e0a", "0x9ff15f970f933606",
                         "0x49dc1dfd55c076ae"]
    so = np.array([0, 2, 5], dtype=np.int64)
    sid = np.array([5, 6, 7, 8, 9], dtype=np.uint64)
    sl = np.array([3, 6, 2, 1, 4], dtype=np.int64)
    st = np.array([0, 1, 2, 3, 0], dtype=np.int8)
    h, c, t = np.empty(5, np.uint64), np.empty(5, np.uint64), np.empty(5, np.int8)
    hash_segments(so, sid, sl, st, salts, np.array([0, 3, 5], dtype=np.int64), 4, 2, h, c, t)
    assert _hexes(h) == ["0x8a024ef48b66f5da", "0x3eef04ab2282fe9b", "0x1341d324f77e1690",
                         "0xdde2ef539c9d5f0b", "0xddce6548ae0d8690"]
    assert _hexes(c) == ["0x127538421528f5c3", "0x8d5c9827f66e6c1", "0x6528ded03e5ba2ae",
                         "0x42db9354ea70d2b7", "0x29331d9337d9e69f"]
    assert t.tolist() == [0, 1, 1, 2, 0]
