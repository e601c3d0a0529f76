"""``simulate --latency`` streamed: the same TTFT, queue waits and records for any chunk size.

The whole trace as one chunk is the reference (the serving loop's timeline is checked against
per-step events in test_serving.py); chunks of 1 and 7 requests make every replica stop for
input mid-busy-period and at idle, with requests arriving at the same instant across a chunk
boundary.  The percentiles are checked against ``numpy.percentile`` over the records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cache import CacheConfig
from simkv.latency.api import simulate_with_latency
from simkv.trace import save_trace
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

CHUNKS = (1, 7, None)


def _rechained(trace: Trace, factor: int) -> Trace:
    """``input_tokens`` scaled with the chains repeated to match (``factor`` blocks each)."""
    n_blocks = np.diff(trace.block_offsets) * factor
    offsets = np.zeros(trace.n_requests + 1, dtype=np.int64)
    np.cumsum(n_blocks, out=offsets[1:])
    hashes = np.repeat(trace.block_hashes, factor) * np.uint64(97) + \
        np.tile(np.arange(factor, dtype=np.uint64), trace.n_block_accesses)
    tokens = (n_blocks - 1) * trace.block_tokens + 1
    return Trace.from_arrays(
        block_tokens=trace.block_tokens, arrival_s=np.floor(trace.arrival_s / 3.0),
        input_tokens=tokens, output_tokens=trace.output_tokens * 4, block_offsets=offsets,
        block_hashes=hashes, session_ids=trace.session_ids, model_index=trace.model_index,
        models=trace.models)


def _same(a, b) -> None:
    assert a.summary_dict == b.summary_dict
    assert np.array_equal(a.hit, b.hit)
    pd.testing.assert_frame_equal(a.records, b.records, check_exact=True)


CONFIGS = [
    dict(replicas=1),
    dict(replicas=3, routing="round_robin", max_concurrency=2),
    dict(replicas=3, routing="least_loaded", token_budget=512),
    dict(replicas=4, routing="prefix_aware", max_concurrency=3, token_budget=1024),
    dict(replicas=3, routing="prefix_aware", tier="cpu",
         hbm_cache=CacheConfig(capacity_blocks=20)),
    dict(replicas=2, tier="nvme", token_budget=None, max_concurrency=None),
]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 100_000), k=st.integers(0, len(CONFIGS) - 1),
       cap=st.integers(0, 80), n=st.integers(1, 90))
def test_chunked_equals_whole(seed, k, cap, n):
    trace = _rechained(random_trace(seed, n_requests=n, models=("llama-3.1-8b",),
                                    duration_s=60), 8)
    cfg = CacheConfig(capacity_blocks=cap, ttl_s=30.0)
    whole = simulate_with_latency(trace, cfg, **CONFIGS[k])
    for c in CHUNKS:
        _same(simulate_with_latency(TraceSource(trace=trace), cfg, chunk_requests=c,
                                    **CONFIGS[k]), whole)
    rec = whole.records
    for p in (50, 90, 99):
        assert whole.summary_dict[f"ttft_p{p}_s"] == float(np.percentile(rec["ttft_s"], p))
        assert whole.summary_dict[f"queue_p{p}_s"] == float(np.percentile(rec["queue_s"], p))
    assert whole.summary_dict["ttft_mean_s"] == pytest.approx(float(rec["ttft_s"].mean()),
                                                             rel=1e-12)


@pytest.mark.parametrize("config", [0, 3, 4])
def test_mooncake_file_any_chunk_size(mooncake_trace, tmp_path, config):
    """The shipped Mooncake trace from Parquet, records written to a sink and not kept."""
    trace = mooncake_trace.head(600)
    path = tmp_path / "m.parquet"
    save_trace(trace, path)
    cfg = CacheConfig(capacity_blocks=3000)
    kw = dict(model="llama-3.1-8b", **CONFIGS[config])
    whole = simulate_with_latency(trace, cfg, **kw)
    for c in CHUNKS:
        frames: list[pd.DataFrame] = []
        res = simulate_with_latency(TraceSource.of(path), cfg, chunk_requests=c, keep=False,
                                    sink=frames.append, **kw)
        assert res.records is None and res.summary_dict == whole.summary_dict
        pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole.records,
                                      check_exact=True)
