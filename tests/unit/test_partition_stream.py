"""A trace partition read back as a stream equals the trace (and ``reassemble``) for any
chunk size, and a sweep over the folder equals the sweep over the trace file."""

from __future__ import annotations

import pytest

from simkv.sizing.grid import lru_grid
from simkv.trace.model import concat_traces
from simkv.trace.partition import partition_trace
from simkv.trace.shardset import open_partition, reassemble
from simkv.trace.stream import TraceSource

CHUNKS = (1, 7, 4096, None)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mooncake_path):
    out = tmp_path_factory.mktemp("ps") / "p"
    partition_trace(mooncake_path, 3, out, chunk_requests=500)  # several row groups per shard
    return out


@pytest.mark.parametrize("n", CHUNKS)
def test_stream_equals_trace(folder, mooncake_trace, n):
    source = TraceSource.of(folder)
    assert source.n_requests_hint() == mooncake_trace.n_requests
    chunks = list(source.chunks(n))
    if n is not None:
        assert max(c.n_requests for c in chunks) <= n
    whole = concat_traces(chunks)
    assert whole.equals(reassemble(open_partition(folder)))
    assert whole.equals(mooncake_trace)


def test_grid_over_the_folder_streams_to_the_same_answer(folder, mooncake_path):
    kw = dict(capacities_blocks=[100, 1000, None], ttls_s=[60.0, None])
    assert lru_grid(TraceSource.of(folder), chunk_requests=7, **kw).equals(
        lru_grid(TraceSource.of(mooncake_path), **kw))
