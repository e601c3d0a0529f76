"""Benchmark: one simulated day of the support-assistant workload (~450,000 requests).

Reports requests generated per second and the share of the time spent in each phase: drawing
(``plan``), the SimPy event loop (``run_sessions``) and laying out + hashing the prompts
(``assemble``), in ``benchmark.extra_info``.  The wall clock is read here, in the harness,
never under simkv/.  ``SIMKV_BENCH_WORKLOAD_HOURS`` shortens the window (default 24).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from simkv.workloads import generator as g
from simkv.workloads import load_spec

SPEC = Path(__file__).resolve().parents[2] / "workloads" / "support-assistant.yaml"


@pytest.mark.bench
def test_bench_support_assistant_day(benchmark):
    spec = load_spec(SPEC)
    window_s = float(os.environ.get("SIMKV_BENCH_WORKLOAD_HOURS", "24")) * 3600.0
    g.generate(spec, window_s=600.0)  # compile / load the numba kernels outside the timing
    phases: dict[str, float] = {}

    def run():
        t0 = time.perf_counter()
        p = g.plan(spec, window_s)
        t1 = time.perf_counter()
        reqs = g.run_sessions(p)
        t2 = time.perf_counter()
        trace = g.assemble(p, reqs)
        t3 = time.perf_counter()
        phases.update(plan_s=t1 - t0, simpy_s=t2 - t1, assemble_s=t3 - t2, total_s=t3 - t0)
        return trace

    trace = benchmark.pedantic(run, rounds=1, iterations=1)
    total = phases["total_s"]
    benchmark.extra_info.update(
        window_hours=window_s / 3600.0, requests=trace.n_requests,
        blocks=trace.n_block_accesses, requests_per_s=trace.n_requests / total,
        blocks_per_s=trace.n_block_accesses / total,
        share_plan=phases["plan_s"] / total, share_simpy=phases["simpy_s"] / total,
        share_hashing=phases["assemble_s"] / total, **phases,
    )
    assert trace.n_requests > 0
