"""Anthropic's breakpoint-bounded hits walked chunk by chunk equal the whole-trace computation
they replace (``_whole_trace`` below, as it stood before streaming: the oracle), for chunks of
1, 7 and 4096 requests, with and without block tags, with requests below the minimum prompt."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cache import CacheConfig
from simkv.economics.context import BillContext
from simkv.economics.kinds import anthropic
from simkv.idmap import densify
from tests.conftest import random_trace

MODEL = "llama-3.1-8b"


def _whole_trace(tr, run) -> np.ndarray:
    n = tr.n_requests
    if tr.n_block_accesses == 0:
        return np.zeros(n, dtype=np.int64)
    ids, n_ids = densify(tr.block_hashes)
    req = tr.request_of_block()
    is_bp = np.zeros(len(ids), dtype=bool)
    ends = tr.block_offsets[1:] - 1
    is_bp[ends[tr.block_offsets[1:] > tr.block_offsets[:-1]]] = True
    if tr.block_tags is not None and len(ids) > 1:
        change = np.zeros(len(ids), dtype=bool)
        change[:-1] = (tr.block_tags[1:] != tr.block_tags[:-1]) & (req[1:] == req[:-1])
        is_bp |= change
    first_bp_req = np.full(n_ids, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_bp_req, ids[is_bp], req[is_bp])
    qualifies = (first_bp_req[ids] < req) & run.whole("eligible")[req]
    pos = np.arange(len(ids)) - tr.block_offsets[req]
    lead_blocks = -(-run.whole("hit_tokens") // tr.block_tokens)
    within = pos < lead_blocks[req]
    cand = np.where(qualifies & within, pos + 1, 0)
    best = np.zeros(n, dtype=np.int64)
    np.maximum.at(best, req, cand)
    counts = tr.block_token_counts()
    cum = np.cumsum(counts)
    start_cum = np.concatenate(([0], cum))[tr.block_offsets[:-1]]
    idx = tr.block_offsets[:-1] + best - 1
    tokens = np.where(best > 0, cum[np.maximum(idx, 0)] - start_cum, 0)
    return np.minimum(tokens, run.whole("hit_tokens"))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), tags=st.booleans(), min_tokens=st.sampled_from([0, 60]),
       ttl=st.sampled_from([20.0, 300.0]))
def test_breakpoints_streamed_equal_whole(seed, tags, min_tokens, ttl):
    trace = random_trace(seed, n_requests=80).with_model(MODEL)
    if tags:
        rng = np.random.default_rng(seed)
        lengths = np.diff(trace.block_offsets)
        trace = replace(trace, block_tags=np.concatenate(
            [np.sort(rng.integers(0, 3, int(k))).astype(np.int8) for k in lengths]))
    ctx = BillContext(trace, MODEL, n_boot=0)
    run = ctx.run(CacheConfig(ttl_s=ttl, ttl_mode="refresh_on_hit"), min_tokens)
    want = _whole_trace(trace, run)
    assert want.sum() > 0 or run.whole("hit_tokens").sum() == 0
    for n in (1, 7, 4096, trace.n_requests):  # every pass of the context reads chunks of n
        ctx_n = BillContext(trace, MODEL, n_boot=0, chunk_requests=n)
        run_n = ctx_n.run(CacheConfig(ttl_s=ttl, ttl_mode="refresh_on_hit"), min_tokens)
        assert np.array_equal(run_n.whole("hit_tokens"), run.whole("hit_tokens"))
        got = anthropic.breakpoint_hits(ctx_n, run_n)
        assert got.dtype == want.dtype and np.array_equal(got, want)
