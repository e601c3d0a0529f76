"""The engine kernels' carried state grows past its first allocation without changing a result.

``simkv.cache.carry`` allocates lists for 1024 objects and doubles them as chunks bring more;
with the state machine's layout (slot = dense id + 1, sentinel 0) growing appends zeroed
slots.  A trace of a few thousand objects cut into chunks of 7 and 333 requests must give the
hits, evictions and expirations of the slow reference twin on the whole stream (an independent
oracle), for every policy and TTL mode.
"""

from __future__ import annotations

import numpy as np
import pytest

from simkv.cache import CacheConfig
from simkv.cache.engine import capacity_units, simulate_stream
from simkv.cache.reference import reference_run
from simkv.cache.stream import build_stream
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

CASES = [(p, ttl, mode) for p in ("lru", "fifo", "lfu")
         for ttl, mode in ((None, "refresh_on_hit"), (60.0, "refresh_on_hit"), (60.0, "from_write"))]


@pytest.fixture(scope="module")
def trace():
    return random_trace(3, n_requests=900, n_prefixes=40, max_blocks=12, duration_s=3600)


def test_the_trace_outgrows_the_first_allocation(trace):
    assert len(np.unique(trace.block_hashes)) > 2 * 1024


@pytest.mark.parametrize("policy, ttl, mode", CASES)
def test_chunked_growth_equals_the_reference(trace, policy, ttl, mode):
    cfg = CacheConfig(capacity_blocks=90, policy=policy, ttl_s=ttl, ttl_mode=mode)
    weights, capacity = capacity_units(trace, cfg)
    hit, ev, ex = reference_run(build_stream(trace, weights), policy=policy, capacity=capacity,
                                ttl=-1.0 if ttl is None else ttl, from_write=mode == "from_write")
    assert hit.sum() > 0 and ev.sum() > 0 and (ttl is None or ex.sum() > 0)  # all paths run
    for n in (7, 333):
        got = simulate_stream(TraceSource(trace=trace), cfg, chunk_requests=n)
        assert np.array_equal(got.hit, hit)
        assert np.array_equal(got.records["evictions"].to_numpy(), ev)
        assert np.array_equal(got.records["expirations"].to_numpy(), ex)
