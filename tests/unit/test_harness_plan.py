"""Replay plan: send times from arrivals, output caps, skips, deterministic routing."""

from __future__ import annotations

import numpy as np
import pytest

from harness.plan import PlanOptions, build_plan, route
from harness.testing import shared_prefix_trace
from simkv.errors import InputError


def test_schedule_scales_arrivals_and_caps_outputs():
    trace = shared_prefix_trace(2, n_requests=20, gap_s=2.0)
    plan = build_plan(trace, PlanOptions(endpoints=("http://a",), time_scale=0.5,
                                         max_tokens_cap=3))
    assert [p.scheduled_s for p in plan] == pytest.approx(list(np.arange(20) * 1.0))
    assert all(1 <= p.max_tokens <= 3 for p in plan)
    assert all(len(p.prompt) == trace.input_tokens[p.request] for p in plan)


def test_back_to_back_and_max_requests():
    trace = shared_prefix_trace(2, n_requests=20)
    plan = build_plan(trace, PlanOptions(endpoints=("http://a",), time_scale=0, max_requests=5))
    assert len(plan) == 5 and all(p.scheduled_s == 0 for p in plan)


def test_too_long_requests_are_planned_as_skipped():
    trace = shared_prefix_trace(2, n_requests=30)
    limit = int(np.median(trace.input_tokens))
    plan = build_plan(trace, PlanOptions(endpoints=("http://a",), max_model_len=limit))
    skipped = [p for p in plan if p.skip_reason]
    expected = int(np.sum(trace.input_tokens + np.maximum(trace.output_tokens, 1) > limit))
    assert len(skipped) == expected > 0
    assert all(p.prompt == [] for p in skipped)


def test_routing_round_robin_and_prefix_affinity():
    trace = shared_prefix_trace(4, n_requests=40)
    eps = ("http://a", "http://b", "http://c")
    rr = route(trace, np.arange(40), eps, "round_robin")
    assert rr[:4] == ["http://a", "http://b", "http://c", "http://a"]
    px = route(trace, np.arange(40), eps, "prefix")
    first = {}
    for i, ep in enumerate(px):
        assert first.setdefault(int(trace.blocks(i)[0]), ep) == ep
    assert px == route(trace, np.arange(40), eps, "prefix")


def test_bad_options_are_input_errors():
    with pytest.raises(InputError):
        PlanOptions(endpoints=())
    with pytest.raises(InputError):
        PlanOptions(endpoints=("x",), routing="random")
