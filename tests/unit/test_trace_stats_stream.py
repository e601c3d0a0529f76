"""``trace stats`` streamed chunk by chunk equals the whole-trace computation, and its exact
percentiles equal numpy's.

The oracle is the former whole-trace implementation (reuse times recomputed in plain Python):
it runs the cache engine with an unlimited cache (an independent path from the streamed
"seen before" count), holds every reuse time in one array and calls ``numpy.percentile``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.analysis import quantiles
from simkv.analysis.quantiles import ExactPercentiles
from simkv.analysis.trace_stats import trace_stats
from simkv.cache import CacheConfig, simulate
from simkv.trace import save_trace
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

CHUNKS = (1, 7, 4096, None)


def _oracle_reuse(trace: Trace) -> np.ndarray:
    """Every reuse time, in plain Python over the raw block hashes (a dict of last touches):
    independent of the dense ids and the compiled, chunk-carrying kernel it checks."""
    last: dict[int, float] = {}
    out = []
    for r in range(trace.n_requests):
        t = float(trace.arrival_s[r])
        for h in trace.block_hashes[trace.block_offsets[r]:trace.block_offsets[r + 1]].tolist():
            if h in last:
                out.append(t - last[h])
            last[h] = t
    return np.asarray(out, dtype=np.float64)


def oracle_stats(trace: Trace) -> dict:
    """The whole-trace statistics as simkv computed them before streaming (the oracle)."""
    inf = simulate(trace, CacheConfig()).summary_dict
    rt = _oracle_reuse(trace)
    pct = {f"reuse_time_p{p}_s": (float(np.percentile(rt, p)) if rt.size else None)
           for p in (50, 90, 99)}
    sessions = trace.session_ids[trace.session_ids >= 0]
    return {
        "requests": trace.n_requests, "duration_s": trace.duration_s,
        "input_tokens": int(trace.input_tokens.sum()),
        "output_tokens": int(trace.output_tokens.sum()), "block_tokens": trace.block_tokens,
        "block_accesses": trace.n_block_accesses, "unique_blocks": inf["unique_blocks"],
        "sessions": int(np.unique(sessions).size) if sessions.size else None,
        "models": list(trace.models), "infinite_block_hit_ratio": inf["block_hit_ratio"],
        "infinite_prefix_token_hit_ratio": inf["prefix_token_hit_ratio"], **pct,
        "has_tags": trace.block_tags is not None,
        "has_content_hashes": trace.content_hashes is not None,
    }


def _check(source, expected: dict) -> None:
    for n in CHUNKS:
        got = trace_stats(source, n)
        assert got == expected, n
        assert list(got) == list(expected)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 120),
       models=st.sampled_from([(), ("llama-3.1-8b",)]))
def test_random_traces_any_chunk_size(seed, n, models):
    trace = random_trace(seed, n_requests=n, models=models, duration_s=500)
    _check(TraceSource(trace=trace), oracle_stats(trace))


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_mooncake_file(mooncake_path, mooncake_trace, tmp_path, suffix):
    path = mooncake_path
    if suffix == ".parquet":
        path = tmp_path / "m.parquet"
        save_trace(mooncake_trace, path)
    _check(TraceSource.of(path), oracle_stats(mooncake_trace))


def test_several_passes_when_bins_are_large(monkeypatch):
    """With gathering disabled, every percentile is found digit by digit (four passes)."""
    monkeypatch.setattr(quantiles, "COLLECT_VALUES", -1)
    trace = random_trace(5, n_requests=300, duration_s=900)
    _check(TraceSource(trace=trace), oracle_stats(trace))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.floats(0, 1e12), st.integers(0, 50).map(float),
                                 st.just(0.0)), max_size=300),
       piece=st.integers(1, 50), collect=st.sampled_from([-1, 3, 1 << 16]))
def test_exact_percentiles_equal_numpy(values, piece, collect):
    """Hand oracle: numpy.percentile over the whole list; the stream comes in pieces, in
    several passes, with bins gathered early or split to the last digit."""
    arr = np.asarray(values, dtype=np.float64)
    old = quantiles.COLLECT_VALUES
    quantiles.COLLECT_VALUES = collect
    try:
        ep = ExactPercentiles((0, 1, 50, 90, 99, 100))
        passes = 0
        while True:
            for a in range(0, len(arr), piece):
                ep.feed(arr[a:a + piece])
            passes += 1
            if ep.finish_pass():
                break
        got = ep.result()
    finally:
        quantiles.COLLECT_VALUES = old
    assert passes <= 5
    for p, value in got.items():
        if not arr.size:
            assert value is None
        else:
            assert value == float(np.percentile(arr, p)), p


def test_negative_values_refused():
    with pytest.raises(ValueError):
        ExactPercentiles().feed(np.array([1.0, -2.0]))


def test_empty_trace(mooncake_trace):
    empty = mooncake_trace.head(0)
    _check(TraceSource(trace=empty), oracle_stats(empty))
