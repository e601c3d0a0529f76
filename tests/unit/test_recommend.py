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


F = 30 * 86400 / 59.0  # month factor of the 60-request, 59-second trace with no warm-up
ZERO = parse_warmup("0")


def test_pick_by_net_savings_with_break_even_payback_and_runner_up():
    """By hand (no warm-up, 60 requests of 64 tokens over 59 s, month factor 2,592,000 / 59):
    a tier of >= 12 blocks holds the 3-prefix cycle, so 57 of 60 requests hit all 64 tokens:
    gross = 57 x 64 / 1e6 x $1,000 x F = $160,264.68; large nets gross - $5, huge gross - $50;
    small (8 blocks) misses everything under LRU and nets -$1.  Break-even for large =
    $5 / (3,840 / 1e6 x $1,000 x F) = 5 / 168,699.66; payback = $5 / (gross / 30) days."""
    out = recommend(cyclic_trace(), None, tiers_book(), growth=(), warmup=ZERO)
    gross = 57 * 64 / 1e6 * 1000 * F
    assert gross == pytest.approx(160_264.68, abs=0.01)
    nets = {t["tier"]: t["net_monthly_savings_usd"] for t in out["tiers"]}
    assert nets == pytest.approx({"free": 0.0, "small": -1.0, "large": gross - 5, "huge": gross - 50})
    assert out["recommended_tier"] == "large"
    assert out["runner_up"] == {"tier": "huge", "net_monthly_savings_usd": pytest.approx(gross - 50)}
    assert out["hit_rate"] == pytest.approx(57 / 60)
    assert out["break_even_prefix_hit_rate"] == pytest.approx(5 / (3840 / 1e6 * 1000 * F))
    assert out["payback_days"] == pytest.approx(5 / (gross / 30))
    per_tier = {t["tier"]: t for t in out["tiers"]}
    assert per_tier["huge"]["break_even_prefix_hit_rate"] == pytest.approx(50 / (3840 / 1e6 * 1000 * F))
    assert per_tier["small"]["payback_days"] is None  # it saves nothing
    assert any("PLACEHOLDER" in line for line in out["reasoning"])


def test_never_a_money_losing_tier_when_another_pays():
    """Gold at $30,000 with the same hits as silver: the pick is the cheaper silver, never gold
    (which nets gross - 30,000 < 0 here: gross = 57 x 64 / 1e6 x $1 x F = $160.26)."""
    book = book_from_dict({"kind": "subscription", "recompute_usd_per_mtok": 1.0, "tiers": [
        {"name": "silver", "capacity": 12 * BLOCK, "usd_per_month": 150},
        {"name": "gold", "capacity": 40 * BLOCK, "usd_per_month": 30_000}]},
        source="t.yaml", default_name="t")
    out = recommend(cyclic_trace(), None, book, growth=(), warmup=ZERO)
    assert out["recommended_tier"] == "silver"
    assert out["net_monthly_savings_usd"] == pytest.approx(57 * 64 / 1e6 * F - 150)
    # when no tier pays, nothing is recommended (the best one is still named)
    pricey = book_from_dict({"kind": "subscription", "recompute_usd_per_mtok": 1.0, "tiers": [
        {"name": "gold", "capacity": 40 * BLOCK, "usd_per_month": 30_000}]},
        source="t.yaml", default_name="t")
    out = recommend(cyclic_trace(), None, pricey, growth=(), warmup=ZERO)
    assert out["recommended_tier"] is None and out["runner_up"]["tier"] == "gold"
    assert any("No tier saves more than it costs" in line for line in out["reasoning"])


def test_growth_reuses_the_window_and_scales_savings():
    """2x traffic, same hit rate, twice the savings: with no warm-up the 2x trace bills 120
    requests of which 114 hit (each copy misses its 3 first requests), so the achievable
    savings are exactly 2 x 57 x 64 / 1e6 x $1,000 x F.  With the default warm-up (auto: the
    first 10% of the 1x window, 5.9 s) the same holds on the billed copies."""
    for warmup in (ZERO, None):
        out = recommend(cyclic_trace(), None, tiers_book(), growth=(2,), warmup=warmup)
        (g2,) = out["growth"]
        assert g2["unlimited_hit_rate"] == pytest.approx(out["unlimited_hit_rate"])
        assert g2["achievable_savings_usd"] == pytest.approx(2 * out["achievable_savings_usd"],
                                                             rel=1e-12)
    out = recommend(cyclic_trace(), None, tiers_book(), growth=(2, 5), warmup=ZERO)
    assert out["achievable_savings_usd"] == pytest.approx(57 * 64 / 1e6 * 1000 * F)
    # 2x: 6 prefixes x 4 blocks = 24 blocks, so large (12) misses and huge (40) holds them all;
    # 5x: 60 blocks, more than huge holds: no tier pays
    assert [g["recommended_tier"] for g in out["growth"]] == ["huge", None]
    assert out["growth"][0]["net_monthly_savings_usd"]["huge"] == pytest.approx(
        2 * 57 * 64 / 1e6 * 1000 * F - 50)


def test_target_share_is_reported_and_bad_input_refused():
    out = recommend(cyclic_trace(), None, tiers_book(), growth=(), target_share=0.5, warmup=ZERO)
    assert out["smallest_tier_capturing_target"] == "large"
    # no reuse at all: nothing is achievable, and no tier pays
    tr = make_trace(np.arange(10.0), [[i] for i in range(10)], [16] * 10, block_tokens=16)
    out = recommend(tr, None, tiers_book(), growth=())
    assert out["achievable_savings_usd"] == 0 and out["recommended_tier"] is None
    with pytest.raises(InputError):
        recommend(tr, None, tiers_book(), target_share=1.5)
    with pytest.raises(InputError, match="whole numbers"):
        recommend(tr, None, tiers_book(), growth=(1.5,))


def test_slo_check_calls_the_latency_model_directly(monkeypatch):
    import simkv.economics.recommend as rec
    from simkv.latency.slo import GpuSavings, SloPoint

    def fake(trace, cfg, slo_p90_s, **kw):  # only the biggest cache meets the SLO
        ok = (cfg.capacity_bytes or 0) >= 40 * BLOCK
        return GpuSavings(SloPoint(cfg, 3, 3, 1.0, True), SloPoint(cfg, 1 if ok else None,
                                                                   1 if ok else None, 0.1, ok),
                          2 if ok else None)

    monkeypatch.setattr(rec, "gpus_saved", fake)
    out = recommend(cyclic_trace(), None, tiers_book(), growth=(), ttft_p90_slo_s=0.5, warmup=ZERO)
    assert out["recommended_tier"] == "huge"  # large nets more but misses the objective
    assert [t.get("meets_slo") for t in out["tiers"]] == [None, None, False, True]
    assert out["slo"]["gpus_saved"] == 2

    def broken(*a, **k):
        raise TypeError("a bug inside the latency model")

    monkeypatch.setattr(rec, "gpus_saved", broken)
    with pytest.raises(TypeError, match="a bug inside"):
        recommend(cyclic_trace(), None, tiers_book(), growth=(), ttft_p90_slo_s=0.5)


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
