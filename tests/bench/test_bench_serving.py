"""The SimPy serving layer against the bare cache kernel, on the same Mooncake requests.

Reported in ``benchmark.extra_info`` (goal: serving layer <= 3x the kernel):

- ``serving_vs_kernel_ratio``: ``simulate_serving`` (SimPy replicas, compiled engine steps) over
  ``simulate`` (the cache kernel with its records), both median of the same number of rounds;
- ``total_vs_kernel_ratio``: the whole ``simulate_with_latency`` (routing, per-replica caches,
  pricing, serving) over ``simulate``.
"""

import statistics
import time

import numpy as np
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.latency.api import _specs, build_latency_model, simulate_with_latency
from simkv.latency.costs import request_costs
from simkv.latency.serving import ServingOptions, simulate_serving

pytestmark = pytest.mark.bench


def _median_s(fn, rounds=7):
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@pytest.mark.parametrize("replicas", [1, 8])
def test_serving_layer_vs_kernel(benchmark, mooncake_trace, replicas):
    trace = mooncake_trace.with_model("llama-3.1-8b")
    cfg = CacheConfig()
    route = np.arange(trace.n_requests, dtype=np.int64) % replicas
    lat = build_latency_model()
    hits = simulate(trace, cfg).records["reused_tokens"].to_numpy()
    zeros = np.zeros(trace.n_requests, dtype=np.int64)
    costs = request_costs(lat, _specs(trace, None), trace.model_index.astype(np.int64),
                          trace.input_tokens, hits, zeros, trace.output_tokens)
    kernel_s = _median_s(lambda: simulate(trace, cfg))
    total_s = _median_s(lambda: simulate_with_latency(trace, cfg, replicas=replicas))
    simulate_serving(trace.arrival_s, route, replicas, costs, ServingOptions())
    result = benchmark.pedantic(simulate_serving,
                                args=(trace.arrival_s, route, replicas, costs, ServingOptions()),
                                rounds=7, iterations=1)
    serving_s = benchmark.stats.stats.median
    assert result.steps > 0
    benchmark.extra_info.update({
        "requests": trace.n_requests,
        "replicas": replicas,
        "engine_steps": result.steps,
        "kernel_s": kernel_s,
        "serving_s": serving_s,
        "total_s": total_s,
        "serving_vs_kernel_ratio": serving_s / kernel_s,
        "total_vs_kernel_ratio": total_s / kernel_s,
    })
