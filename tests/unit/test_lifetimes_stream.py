"""Streamed entry lifetimes equal, to the last bit, the whole-trace computation they replace.

``_whole_trace`` below is that computation as it stood before streaming (every access sorted by
key then time, entries found on the sorted arrays; summed with ``math.fsum``, the correctly
rounded sum the stream keeps): the independent oracle.  The stream is cut
into chunks of 1, 7 and 4096 requests, with and without content keys, every TTL mode, windows
that cut entries at both ends, ``shared_only``, and requests left out (a minimum prompt).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.economics import lifetimes
from simkv.economics.lifetimes import eligible_chunks, token_seconds
from simkv.idmap import densify
from tests.conftest import random_trace


def _intervals(ids, times, tokens, ttl_s, ttl_mode, lo, hi) -> float:
    if len(ids) == 0:
        return 0.0
    order = np.lexsort((times, ids))
    sid, st_, stok = ids[order], times[order], tokens[order]
    if ttl_s is None:
        first = np.ones(len(sid), dtype=bool)
        first[1:] = sid[1:] != sid[:-1]
        starts, ends, tok = st_[first], np.full(first.sum(), hi), stok[first]
    elif ttl_mode == "refresh_on_hit":
        new = np.ones(len(sid), dtype=bool)
        new[1:] = (sid[1:] != sid[:-1]) | (st_[1:] - st_[:-1] >= ttl_s)
        last = np.ones(len(sid), dtype=bool)
        last[:-1] = new[1:]
        starts, tok = st_[new], stok[new]
        ends = st_[last] + ttl_s
    else:
        starts_l, tok_l = [], []
        prev_id, expiry = -1, -np.inf
        for i, t, k in zip(sid.tolist(), st_.tolist(), stok.tolist(), strict=True):
            if i != prev_id or t >= expiry:
                starts_l.append(t)
                tok_l.append(k)
                expiry = t + ttl_s
                prev_id = i
        starts, tok = np.asarray(starts_l), np.asarray(tok_l)
        ends = starts + ttl_s
    alive = np.clip(np.minimum(ends, hi) - np.maximum(starts, lo), 0.0, None)
    return math.fsum((tok * alive).tolist())  # the correctly rounded sum over the entries


def _whole_trace(sub, content, ttl_s, ttl_mode, lo, hi, shared_only) -> float:
    if sub.n_block_accesses == 0:
        return 0.0
    ids, n_ids = densify(sub.content_hashes if content else sub.block_hashes)
    times = np.repeat(sub.arrival_s, np.diff(sub.block_offsets))
    tokens = sub.block_token_counts().astype(np.float64)
    if shared_only:
        req = sub.request_of_block()
        order = np.lexsort((req, ids))
        n_req = np.zeros(n_ids, dtype=np.int64)
        sid, sreq = ids[order], req[order]
        new = np.ones(len(sid), dtype=bool)
        new[1:] = (sid[1:] != sid[:-1]) | (sreq[1:] != sreq[:-1])
        np.add.at(n_req, sid[new], 1)
        keep = n_req[ids] >= 2
        ids, times, tokens = ids[keep], times[keep], tokens[keep]
    return _intervals(ids, times, tokens, ttl_s, ttl_mode, lo, hi)


def _with_content(trace, seed):
    """Content keys that repeat across and within requests (chunk reuse); arrivals on whole
    seconds, so touches exactly one TTL apart and ties in time occur."""
    rng = np.random.default_rng(seed)
    return replace(trace, arrival_s=np.floor(trace.arrival_s),
                   content_hashes=rng.integers(1, 40, trace.n_block_accesses).astype(np.uint64))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), ttl=st.sampled_from([None, 5.0, 30.0, 200.0]),
       mode=st.sampled_from(["refresh_on_hit", "from_write"]), content=st.booleans(),
       shared=st.booleans(), min_tokens=st.sampled_from([1, 40]),
       cut=st.tuples(st.floats(0.0, 0.6), st.floats(0.5, 1.2)))
def test_streamed_lifetimes_equal_the_whole_trace(seed, ttl, mode, content, shared, min_tokens,
                                                  cut):
    trace = _with_content(random_trace(seed, n_requests=90, duration_s=300.0), seed)
    rows = np.flatnonzero(trace.input_tokens >= min_tokens)
    lo, hi = cut[0] * 300.0, cut[1] * 300.0
    want = _whole_trace(trace.select(rows), content, ttl, mode, lo, hi, shared)
    for n in (1, 7, 4096):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(lifetimes, "CHUNK_REQUESTS", n)
            got = token_seconds(lambda: eligible_chunks(trace, rows), content=content, ttl_s=ttl,
                                ttl_mode=mode, lo=lo, hi=hi, shared_only=shared)
        assert got == want
    assert want > 0 or len(rows) == 0 or hi <= lo or shared
