"""Prometheus parsing, counter deltas, cache configuration, missing metrics."""

from __future__ import annotations

import pytest

from harness.metrics import (
    VLLM_REQUIRED,
    MetricsError,
    Snapshot,
    cache_deltas,
    cache_info,
    delta,
    lmcache_deltas,
)

TEXT = """# HELP vllm:prefix_cache_queries Prefix cache queries
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny"} %(q)s
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{engine="0",model_name="tiny"} %(h)s
# TYPE vllm:external_prefix_cache_queries counter
vllm:external_prefix_cache_queries_total{engine="0",model_name="tiny"} %(eq)s
# TYPE vllm:external_prefix_cache_hits counter
vllm:external_prefix_cache_hits_total{engine="0",model_name="tiny"} %(eh)s
# TYPE vllm:prompt_tokens_cached_by_source counter
vllm:prompt_tokens_cached_by_source_total{engine="0",model_name="tiny",source="device"} %(h)s
vllm:prompt_tokens_cached_by_source_total{engine="0",model_name="tiny",source="external_unspecified"} %(eh)s
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} 0.25
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="128",engine="0",kv_cache_memory_bytes="8388608",num_gpu_blocks="64"} 1.0
"""


def snap(q, h, eq=0, eh=0):
    return Snapshot.parse(TEXT % {"q": q, "h": h, "eq": eq, "eh": eh})


def test_deltas_not_totals():
    before, after = snap(4000, 1920, 100, 0), snap(10000, 4000, 600, 256)
    d = cache_deltas(before, after, connector=True)
    assert d["prefix_cache_queries_tokens"] == 6000
    assert d["prefix_cache_hits_tokens"] == 2080
    assert d["prefix_hit_ratio"] == pytest.approx(2080 / 6000)
    assert d["external_hit_ratio"] == pytest.approx(256 / 500)
    assert d["cached_by_source_external_unspecified_tokens"] == 256
    assert delta(before, after, "vllm:prompt_tokens_cached_by_source_total", source="device") == 2080


def test_cache_info_and_required():
    s = snap(1, 1)
    info = cache_info(s)
    assert (info.block_size, info.num_gpu_blocks, info.usable_blocks) == (128, 64, 63)
    s.require(VLLM_REQUIRED, "vllm")
    with pytest.raises(MetricsError, match="lmcache_mp_lookup_hit_tokens_total"):
        s.require(("lmcache_mp_lookup_hit_tokens_total",), "http://x/metrics")
    with pytest.raises(MetricsError):
        cache_info(Snapshot.parse("# TYPE x counter\nx_total 1\n"))


def test_lmcache_counters():
    a = Snapshot.parse("# TYPE lmcache_mp_lookup_hit_tokens counter\n"
                       "lmcache_mp_lookup_hit_tokens_total 10\n"
                       "# TYPE lmcache_mp_l1_usage_ratio gauge\nlmcache_mp_l1_usage_ratio 0.1\n")
    b = Snapshot.parse("# TYPE lmcache_mp_lookup_hit_tokens counter\n"
                       "lmcache_mp_lookup_hit_tokens_total 266\n"
                       "# TYPE lmcache_mp_l1_usage_ratio gauge\nlmcache_mp_l1_usage_ratio 0.2\n")
    d = lmcache_deltas(a, b)
    assert d["lmcache_mp_lookup_hit_tokens_total"] == 256
    assert d["lmcache_mp_l1_usage_ratio"] == 0.2
