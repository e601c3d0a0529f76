"""The latency stage predicts TTFT at the fewest replicas meeting the TTFT objective (issue 18):
the count it writes meets the SLO and one fewer does not, checked against the simulation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from simkv.pipeline.stages import latency as stage


def _p90(trace, cfg, replicas: int, **kw) -> float:
    from simkv.latency.api import simulate_with_latency

    res = simulate_with_latency(trace, cfg, replicas=replicas, **kw)
    return float(np.quantile(res.records["ttft_s"].to_numpy(), 0.9))


def test_latency_stage_replicas_are_the_fewest_meeting_the_slo(monkeypatch):
    from simkv.cache import CacheConfig
    from simkv.trace import load_trace
    from tests.conftest import MOONCAKE

    tr = load_trace(MOONCAKE).head(400).with_model("llama-3.1-8b")
    monkeypatch.setattr(stage, "CHOICES", stage.CHOICES[:1])  # no cache: one choice, quick
    from simkv.trace.stream import TraceSource

    # a WorkloadInput stand-in (the stage reads its ``chunks`` stream)
    w = SimpleNamespace(name="small", trace=tr, whole=lambda: tr, chunks=TraceSource(trace=tr))
    rows, cdf = stage._predicted([w], {"small": 1 << 30}, 2.0)
    r = rows.iloc[0]
    assert bool(r["meets_slo"]) and int(r["replicas"]) > 1 and r["over_slo_factor"] <= 1
    assert r["slo_p90_s"] == 2.0 and r["routing"] == stage.ROUTING_NO_CACHE
    kw = {"gpu": stage.GPU, "tier": "hbm", "routing": stage.ROUTING_NO_CACHE, "hbm_cache": None}
    cfg = CacheConfig(capacity_blocks=0)
    n = int(r["replicas"])
    assert _p90(tr, cfg, n, **kw) <= 2.0 < _p90(tr, cfg, n - 1, **kw)
    assert r["ttft_p90_s"] == _p90(tr, cfg, n, **kw)
    assert len(cdf) == 101


def test_unservable_load_says_by_how_much():
    from simkv.cache import CacheConfig
    from simkv.latency.slo import sized_ttft
    from simkv.trace import load_trace
    from tests.conftest import MOONCAKE

    tr = load_trace(MOONCAKE).head(200).with_model("llama-3.1-8b")
    s = sized_ttft(tr, CacheConfig(capacity_blocks=0), slo_p90_s=0.01, gpu="H100", tier="hbm",
                   max_replicas=16)
    cols = stage._sized_cols(s)
    assert cols["meets_slo"] is False and cols["over_slo_factor"] > 1


def test_prefix_aware_search_stays_within_the_router():
    """The prefix-aware router tracks at most 64 replicas: the search stops there, not at 256."""
    from simkv.cache import CacheConfig
    from simkv.latency.routing import MAX_TRACKED_REPLICAS
    from simkv.latency.slo import sized_ttft
    from simkv.trace import load_trace
    from tests.conftest import MOONCAKE

    tr = load_trace(MOONCAKE).head(200).with_model("llama-3.1-8b")
    s = sized_ttft(tr, CacheConfig(), slo_p90_s=1e-6, gpu="H100", tier="remote",
                   routing="prefix_aware")
    assert not s.meets and s.replicas <= MAX_TRACKED_REPLICAS == s.max_replicas
    assert "cannot be served" in s.describe("H100")


def test_ttft_headline_says_unservable_and_by_how_much():
    import pandas as pd

    from simkv.report.sections.ttft import _headline

    frame = pd.DataFrame([
        {"workload": "a", "choice": "no cache", "replicas": 4, "meets_slo": False,
         "over_slo_factor": 3.0, "ttft_p90_s": 6.0},
        {"workload": "a", "choice": "bucket", "replicas": 2, "meets_slo": True,
         "over_slo_factor": 0.5, "ttft_p90_s": 1.0},
        {"workload": "b", "choice": "no cache", "replicas": 8, "meets_slo": False,
         "over_slo_factor": 2.5, "ttft_p90_s": 5.0}])
    text = _headline(frame, {"gpu": "H100"}, 2.0)
    assert text.startswith("At TTFT p90 <= 2 s")
    assert "a needs 2 H100 replica(s) with bucket (unservable without a cache (3.0x" in text
    assert "b cannot be served with any cache choice (p90 at best 2.5x the objective)" in text


def test_replicas_needed_streams_and_agrees_with_the_records():
    """``replicas_needed`` on a stream keeps no records (p90 from the summary's streamed
    percentile), and its count is the fewest whose records' p90 meets the objective."""
    from simkv.cache import CacheConfig
    from simkv.latency.slo import replicas_needed
    from simkv.trace import load_trace
    from simkv.trace.stream import TraceSource
    from tests.conftest import MOONCAKE

    tr = load_trace(MOONCAKE).head(300).with_model("llama-3.1-8b")
    cfg, kw = CacheConfig(capacity_blocks=2000), {"gpu": "H100", "tier": "hbm"}
    point = replicas_needed(TraceSource(trace=tr), cfg, 2.0, **kw)
    n = point.replicas
    assert point.meets and n > 1
    assert _p90(tr, cfg, n, **kw) <= 2.0 < _p90(tr, cfg, n - 1, **kw)
    assert point.ttft_quantile_s == _p90(tr, cfg, n, **kw)
    # a quantile the summary does not stream is taken from the records
    p80 = replicas_needed(tr, cfg, 2.0, quantile=0.8, **kw)
    assert p80.replicas <= n
