"""The report's stages read workloads as streams: the streamed figures equal the whole-trace
formulas they replace (computed here from the loaded trace, for chunk sizes 1, 7 and whole)."""

from __future__ import annotations

import numpy as np
import pytest

from simkv.cache.engine import block_bytes_per_access
from simkv.cache.stream import dense_block_ids
from simkv.pipeline.stages.common import request_totals, working_set_bytes
from simkv.pipeline.workload import WorkloadInput
from simkv.trace import load_trace, save_trace
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

MODELS = ("llama-3.1-8b", "deepseek-v3")


@pytest.fixture
def trace_file(tmp_path):
    path = tmp_path / "mix.parquet"
    save_trace(random_trace(11, n_requests=150, models=MODELS), path)
    return path


@pytest.mark.parametrize("n", [1, 7, None])
def test_streamed_totals_equal_the_whole_trace(trace_file, n):
    whole = load_trace(trace_file)
    w = WorkloadInput(name="mix", model="+".join(MODELS), source="mix", stream=TraceSource.of(trace_file))
    ids, n_obj = dense_block_ids(whole)
    weight = np.zeros(n_obj, dtype=np.int64)
    weight[ids] = block_bytes_per_access(whole)  # each block at its last access's model
    assert working_set_bytes(w, n) == int(weight.sum())
    t = request_totals(w, n)
    assert (t.requests, t.input_tokens, t.output_tokens) == (
        whole.n_requests, int(whole.input_tokens.sum()), int(whole.output_tokens.sum()))
    assert t.sessions == len(np.unique(whole.session_ids))
    assert t.last_s - t.first_s == whole.duration_s
    assert w.head.models == whole.models and w.head.n_requests == 1
    assert w.n_requests == whole.n_requests


def test_a_workload_needs_a_trace_or_a_stream(trace_file):
    with pytest.raises(ValueError):
        WorkloadInput(name="x", model="m", source="x")
    whole = load_trace(trace_file)
    with pytest.raises(ValueError):
        WorkloadInput(name="x", model="m", source="x", trace=whole, stream=TraceSource.of(trace_file))
    assert WorkloadInput(name="x", model="m", source="x", trace=whole).chunks.trace is whole
