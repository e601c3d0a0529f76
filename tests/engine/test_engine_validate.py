"""Measured (vLLM on CPU) vs predicted (simkv's vllm policy): prefix and LMCache hit rates."""

from __future__ import annotations

import json

import pytest

from harness.cli import app
from harness.testing import shared_prefix_trace
from simkv.cli.main import run
from simkv.trace import save_trace

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def _validate(tmp_path, stack, seed: int, *extra: str) -> dict:
    trace_path = tmp_path / f"trace{seed}.parquet"
    save_trace(shared_prefix_trace(seed, n_requests=120), trace_path)
    out = tmp_path / f"out{seed}"
    code = run(app, ["validate", "--trace", str(trace_path), "--endpoint", stack.endpoint,
                     "--out", str(out), "--salt", str(seed), *extra], prog="simkv-harness")
    assert code == 0
    assert (out / "records.parquet").exists() and (out / "validate.parquet").exists()
    return json.loads((out / "validate.json").read_text())


def test_prefix_hit_rate_within_one_point(tmp_path, engine_plain):
    res = _validate(tmp_path, engine_plain, 31)
    assert res["requests_sent"] >= 100 and res["skipped_too_long"] == 0
    assert res["measured_prefix_queries_tokens"] == res["predicted_prefix_queries_tokens"]
    assert 0.2 < res["measured_prefix_hit_ratio"] < 0.95  # hits and evictions both happen
    assert abs(res["predicted_prefix_hit_ratio"] - res["measured_prefix_hit_ratio"]) <= 0.01
    assert res["measured_ttft_p50_s"] > 0


def test_lmcache_external_hits_within_two_points(tmp_path, engine_lmcache):
    res = _validate(tmp_path, engine_lmcache, 32, "--lmcache-metrics",
                    engine_lmcache.lmcache_metrics_url)
    assert res["measured_external_hit_tokens"] > 0
    assert abs(res["predicted_prefix_hit_ratio"] - res["measured_prefix_hit_ratio"]) <= 0.01
    assert abs(res["predicted_external_hit_ratio"] - res["measured_external_hit_ratio"]) <= 0.02
