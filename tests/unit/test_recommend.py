"""Tier recommendation on a small trace whose working set is known, and traffic growth."""

from __future__ import annotations

import numpy as np
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.economics import book_from_dict, parse_warmup
from simkv.economics.growth import grow
from simkv.economics.recommend import recommend
from simkv.errors import InputError
from tests.unit.test_bills import make_trace

BLOCK = 131072 * 16  # llama-3.1-8b KV bytes of a 16-token block (2 MiB)


def cyclic_trace(groups: int = 3, n: int = 60):
    """Requests cycling over ``groups`` 4-block prefixes, one per second (LRU's worst case)."""
    chains = [[g * 100 + j for j in range(4)] for g in range(groups)]
    return make_trace(np.arange(n, dtype=float), [chains[i % groups] for i in range(n)], [64] * n,
                      block_tokens=16, sessions=[i % groups for i in range(n)])


def tiers_book(**kw):
    return book_from_dict({"kind": "subscription", "name": "bucket", "recompute_usd_per_mtok": 1000.0,
                           "placeholder": True, "tiers": [
                               {"name": "free", "capacity": 0, "usd_per_month": 0},
                               {"name": "small", "capacity": 8 * BLOCK, "usd_per_month": 1},
                               {"name": "large", "capacity": 12 * BLOCK, "usd_per_month": 5},
                               {"name": "huge", "capacity": 40 * BLOCK, "usd_per_month": 50}],
                           **kw}, source="tiers.yaml", default_name="bucket")


def test_smallest_tier_capturing_target_and_growth():
    out = recommend(cyclic_trace(), None, tiers_book(), growth=(2, 5))
    shares = {t["tier"]: t["captured_share"] for t in out["tiers"]}
    assert shares["free"] == 0 and shares["small"] == 0  # 8 blocks < 12-block cycle: LRU misses all
    assert shares["large"] == pytest.approx(1.0) and shares["huge"] == pytest.approx(1.0)
    assert out["recommended_tier"] == "large"
    assert out["hit_rate"] == pytest.approx(1.0)
    large = next(t for t in out["tiers"] if t["tier"] == "large")
    assert out["break_even_hit_rate"] == pytest.approx(5 / (large["tokens_input"] * 1000 / 1e6))
    per_day = large["gross_savings_usd"] / 30
    assert out["payback_days"] == pytest.approx(5 / per_day)
    assert out["net_savings_usd"] == pytest.approx(large["gross_savings_usd"] - 5)
    assert [g["recommended_tier"] for g in out["growth"]] == ["huge", None]
    assert any("PLACEHOLDER" in line for line in out["reasoning"])
    assert any("At 5x traffic" in line and "no tier" in line for line in out["reasoning"])


def test_target_share_and_no_reuse():
    # a lower target cannot pick a tier that captures nothing: still "large"
    assert recommend(cyclic_trace(), None, tiers_book(), growth=(), target_share=0.5)[
        "recommended_tier"] == "large"
    # no reuse at all: nothing is achievable, so the free tier is enough
    tr = make_trace(np.arange(10.0), [[i] for i in range(10)], [16] * 10, block_tokens=16)
    out = recommend(tr, None, tiers_book(), growth=())
    assert out["achievable_savings_usd"] == 0 and out["recommended_tier"] == "free"
    with pytest.raises(InputError):
        recommend(tr, None, tiers_book(), target_share=1.5)
    with pytest.raises(InputError, match="whole numbers"):
        recommend(tr, None, tiers_book(), growth=(1.5,))


def test_slo_check_through_the_latency_hook(monkeypatch):
    import simkv.economics.recommend as rec

    monkeypatch.setattr(rec, "slo_evaluate", lambda *a, **k: (None, "simkv.latency.slo is not available"))
    out = recommend(cyclic_trace(), None, tiers_book(), growth=(), ttft_p90_slo_s=0.5)
    assert out["slo"] == {"available": False, "reason": "simkv.latency.slo is not available"}
    assert out["recommended_tier"] == "large"

    def fake(trace, cfg, spec, *, ttft_p90_slo_s, gpu):  # only the biggest cache meets the SLO
        cap = cfg.capacity_bytes or 0
        return {"meets_slo": cap >= 40 * BLOCK, "ttft_p90_s": 0.1, "gpus_needed": 1,
                "gpus_needed_no_cache": 3, "gpus_saved": 2}, ""

    monkeypatch.setattr(rec, "slo_evaluate", fake)
    out = recommend(cyclic_trace(), None, tiers_book(), growth=(), ttft_p90_slo_s=0.5)
    assert out["recommended_tier"] == "huge"
    # checked only where the savings target is met: large (fails the SLO), then huge
    assert [t["meets_slo"] for t in out["tiers"]] == [None, None, False, True]
    assert out["slo"]["gpus_saved"] == 2


def test_grow_copies_sessions_with_fresh_content():
    tr = cyclic_trace(3, 30)
    g = grow(tr, 3)
    assert g.n_requests == 90 and np.all(np.diff(g.arrival_s) >= 0)
    assert len(np.unique(g.block_hashes)) == 3 * len(np.unique(tr.block_hashes))
    assert len(np.unique(g.session_ids)) == 3 * len(np.unique(tr.session_ids))
    unl = CacheConfig()
    one = simulate(tr, unl).summary_dict["prefix_hit_tokens"]
    assert simulate(g, unl).summary_dict["prefix_hit_tokens"] == 3 * one
    assert grow(tr, 1) is tr
    with pytest.raises(InputError):
        grow(tr, 0)


def test_recommend_is_deterministic():
    a = recommend(cyclic_trace(), None, tiers_book(), growth=(2,), warmup=parse_warmup("10%"))
    b = recommend(cyclic_trace(), None, tiers_book(), growth=(2,), warmup=parse_warmup("10%"))
    assert a == b
