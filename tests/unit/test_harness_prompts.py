"""Prompt builder: requests share exactly their common hash chain's tokens, nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.prompts import RESERVED, PromptBuilder, chained_keys
from harness.testing import shared_prefix_trace
from simkv.errors import InputError
from tests.conftest import random_trace


def _lcp(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    diff = np.nonzero(a[:n] != b[:n])[0]
    return int(diff[0]) if len(diff) else n


def _expected_lcp(trace, i: int, j: int) -> int:
    a, b = trace.blocks(i), trace.blocks(j)
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    if k == min(len(a), len(b)):  # one chain is a prefix of the other: the shorter prompt
        return int(min(trace.input_tokens[i], trace.input_tokens[j]))
    return k * trace.block_tokens


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), vocab=st.sampled_from([8, 50, 4096]))
def test_common_prefix_is_exactly_the_shared_chain(seed, vocab):
    trace = random_trace(seed, n_requests=40, block_tokens=8)
    pb = PromptBuilder(trace, vocab, salt=seed)
    toks = [pb.tokens(i) for i in range(trace.n_requests)]
    for i in range(trace.n_requests):
        assert len(toks[i]) == trace.input_tokens[i]
        assert toks[i].min() >= RESERVED and toks[i].max() < vocab
        for j in range(i):
            exp = _expected_lcp(trace, i, j)
            got = _lcp(toks[i], toks[j])
            if exp == min(len(toks[i]), len(toks[j])):
                assert got == exp
            else:  # they part inside the diverging block's marker (its first digits may agree)
                assert exp <= got < exp + pb.marker_tokens


def test_distinct_hashes_get_distinct_markers_and_blocks():
    trace = shared_prefix_trace(3, n_requests=60)
    pb = PromptBuilder(trace, 4096)
    first = {}
    for j, h in enumerate(trace.block_hashes.tolist()):
        block = tuple(pb.block_tokens_of(j)[: pb.marker_tokens])
        assert first.setdefault(block, h) == h  # one marker, one hash: no collision
    assert len(first) == len(set(trace.block_hashes.tolist()))


def test_deterministic_and_salted():
    trace = shared_prefix_trace(5, n_requests=10)
    a = PromptBuilder(trace, 4096, salt=1).tokens(3)
    assert np.array_equal(a, PromptBuilder(trace, 4096, salt=1).tokens(3))
    b = PromptBuilder(trace, 4096, salt=2).tokens(3)
    assert not np.array_equal(a[: trace.block_tokens], b[: trace.block_tokens])


def test_too_small_vocabulary_or_block_is_refused():
    trace = random_trace(1, n_requests=50, block_tokens=1)
    with pytest.raises(InputError):
        PromptBuilder(trace, 4096)
    with pytest.raises(InputError):
        PromptBuilder(random_trace(1), 3)


def test_chained_keys_follow_token_prefixes():
    t = np.arange(300)
    u = t.copy()
    u[200] = 9999
    k1, k2 = chained_keys(t, 128), chained_keys(u, 128)
    assert len(k1) == 3 and k1[0] == k2[0] and k1[1] != k2[1] and k1[2] != k2[2]
    assert len(chained_keys(t, 128, full_only=True)) == 2
    v = t.copy()
    v[0] = 7
    assert chained_keys(v, 128)[1] != k1[1]  # a block's key covers its whole prefix
