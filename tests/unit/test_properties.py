"""Property tests of the cache engine (hypothesis): monotonicity that must hold exactly.

- LRU has the stack property: the hit set at capacity C is contained in that at C' > C, so
  block and prefix-token hit ratios never fall as capacity grows (FIFO has no such property:
  Belady's anomaly).
- LRU with TTL refreshed on hit: an access hits iff its stack distance fits the capacity and
  its reuse time is under the TTL, so a longer TTL never removes a hit, at any capacity.  (From
  write it can: an entry kept alive longer is not rewritten, so it expires earlier.)
(The grid, round-trip, bill and re-chunking properties live beside their modules' tests.)
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cache import CacheConfig, simulate
from tests.conftest import random_trace

PROPS = settings(max_examples=40, deadline=None)


def _assert_hits_nest(trace, configs) -> None:
    """Each config's hit set contains the previous one's, and prefix hit tokens never fall."""
    prev_hit, prev_tokens = None, -1
    for cfg in configs:
        res = simulate(trace, cfg)
        if prev_hit is not None:
            assert np.all(res.hit >= prev_hit)
            assert res.summary_dict["prefix_hit_tokens"] >= prev_tokens
        prev_hit, prev_tokens = res.hit, res.summary_dict["prefix_hit_tokens"]


@PROPS
@given(seed=st.integers(0, 10**6), caps=st.lists(st.integers(0, 80), min_size=2, max_size=5),
       ttl=st.one_of(st.none(), st.floats(5.0, 500.0)))
def test_lru_hits_never_fall_as_capacity_grows(seed, caps, ttl):
    trace = random_trace(seed, n_requests=150, duration_s=1200)
    _assert_hits_nest(trace, [CacheConfig(capacity_blocks=c, ttl_s=ttl) for c in sorted(caps)])


@PROPS
@given(seed=st.integers(0, 10**6), ttls=st.lists(st.floats(1.0, 2000.0), min_size=2, max_size=5),
       cap=st.one_of(st.none(), st.integers(1, 80)))
def test_hits_never_fall_as_ttl_grows(seed, ttls, cap):
    trace = random_trace(seed, n_requests=150, duration_s=3000)
    _assert_hits_nest(trace, [CacheConfig(capacity_blocks=cap, ttl_s=t) for t in sorted(ttls)])
