"""The decision cards and the explorer's Python side: money formulas, sensitivity, replica sizing,
cards and payload, each against hand calculations written in the docstrings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simkv.report.explorer import sensitivity
from simkv.report.explorer.card import build_card, headline
from simkv.report.explorer.money import TierPrice, month, tier_for, tokens_per_month
from simkv.report.explorer.payload import build_payload, script_json
from simkv.report.explorer.replicas import _search, sized_ttft
from simkv.report.explorer.tables import ExplorerTables

TIERS = [TierPrice("free", 0.0, 0.0), TierPrice("bronze", 100.0, 25.0),
         TierPrice("silver", 1000.0, 150.0)]


def test_month_by_hand():
    """V = 2e9 tokens, h = 0.4, p = $0.15/MTok, F = $25: no cache 2e9 x 0.15 / 1e6 = $300;
    bill 25 + 2e9 x 0.6 x 0.15 / 1e6 = 25 + 180 = $205; net $95; break-even 25 / 300."""
    m = month(2e9, 0.4, 0.15, 25.0)
    assert m.no_cache_usd == pytest.approx(300.0)
    assert m.bill_usd == pytest.approx(205.0)
    assert m.net_savings_usd == pytest.approx(95.0)
    assert m.break_even_hit_rate == pytest.approx(25.0 / 300.0)
    assert month(0.0, 0.4, 0.15, 25.0).break_even_hit_rate is None


def test_tokens_per_month_and_tier_for():
    """1e6 tokens in one hour, 30 days a month: 1e6 x 24 x 30 = 7.2e8."""
    assert tokens_per_month(1e6, 3600.0, 30.0) == pytest.approx(7.2e8)
    assert tier_for(TIERS, 50.0).name == "bronze"
    assert tier_for(TIERS, 100.0).name == "bronze"
    assert tier_for(TIERS, 101.0).name == "silver"
    assert tier_for(TIERS, 2000.0) is None and tier_for(TIERS, None) is None


def test_sensitivity_ties_and_a_dominant_placeholder_fee():
    """Gross savings V h p / 1e6 = 2e9 x 0.4 x 0.15 / 1e6 = $120: +-50% of price, traffic or hit
    rate moves net by +-$60, the $25 fee by -+$12.50.  The three tie; the modelled hit rate is
    named first.  With V = 1e8 gross is $3: the fee's +-$12.50 dominates."""
    ranked = sensitivity.swings(2e9, 0.4, 0.15, 25.0, fee_placeholder=True)
    top, tied = sensitivity.most_sensitive(ranked)
    assert top.name == "hit_rate" and {s.name for s in tied} == {"traffic", "price"}
    assert top.low_usd == pytest.approx(-60.0) and top.high_usd == pytest.approx(60.0)
    fee = next(s for s in ranked if s.name == "fee")
    assert fee.low_usd == pytest.approx(12.5) and fee.high_usd == pytest.approx(-12.5)
    top, tied = sensitivity.most_sensitive(sensitivity.swings(1e8, 0.2, 0.15, 25.0,
                                                              fee_placeholder=True))
    assert top.name == "fee" and tied == [] and "placeholder" in top.label
    # a hit rate near 1 is capped: +50% of 0.9 is 1.0 (+0.1), so its move is the -50% side
    capped = next(s for s in sensitivity.swings(1e9, 0.9, 0.1, 5.0, fee_placeholder=False)
                  if s.name == "hit_rate")
    assert capped.high_usd == pytest.approx(1e9 * 0.1 * 0.1 / 1e6)
    assert capped.low_usd == pytest.approx(-1e9 * 0.45 * 0.1 / 1e6)


def test_replica_search_fewest_meeting_and_the_floor():
    """10 / r <= 2 first at r = 5; max(3, 12 / r) never meets 2 and stops improving at r = 4."""
    assert _search(lambda r: 10.0 / r, 2.0, 64) == (5, True)
    assert _search(lambda r: max(3.0, 12.0 / r), 2.0, 64) == (4, False)


def test_sized_ttft_is_the_fewest_replicas_meeting_the_slo():
    """Checked against the latency simulation run directly at r and r - 1 replicas."""
    from simkv.cache import CacheConfig
    from simkv.latency.api import simulate_with_latency
    from simkv.trace import load_trace
    from tests.conftest import MOONCAKE

    tr = load_trace(MOONCAKE).head(400).with_model("llama-3.1-8b")
    cfg = CacheConfig(capacity_blocks=0)
    s = sized_ttft(tr, cfg, slo_p90_s=2.0, gpu="H100", tier="hbm")
    assert s.meets and s.replicas > 1

    def p90(r):
        res = simulate_with_latency(tr, cfg, replicas=r, gpu="H100", tier="hbm")
        return float(np.quantile(res.records["ttft_s"].to_numpy(), 0.9))

    assert p90(s.replicas) <= 2.0 < p90(s.replicas - 1)
    assert s.ttft_p90_s == pytest.approx(p90(s.replicas))
    worse = sized_ttft(tr, cfg, slo_p90_s=0.05, gpu="H100", tier="hbm", max_replicas=32)
    assert not worse.meets and worse.over_slo_factor > 1
    assert "cannot be served" in worse.describe("H100")


def _tables(volume_tokens: float) -> ExplorerTables:
    """A hand-made run: hit rate 0.3 at 100 bytes, 0.5 at 1000 bytes, no TTL, 1x/2x/5x alike."""
    grid, vol, ttft = [], [], []
    for g in (1, 2, 5):
        for cap, h in ((100.0, 0.3), (1000.0, 0.5), (np.nan, 0.6)):
            grid.append({"workload": "w", "model": "m", "traffic": g, "capacity_bytes": cap,
                         "ttl_s": np.nan, "prefix_token_hit_ratio": h})
        vol.append({"workload": "w", "model": "m", "traffic": g, "input_tokens": 1,
                    "window_s": 1.0, "input_tokens_per_month": volume_tokens * g,
                    "working_set_bytes": 500.0 * g, "block_tokens": 16, "block_bytes": 10})
        for setup, cap, h in (("no cache", 0.0, 0.0), ("bronze", 100.0, 0.3), ("silver", 1000.0, 0.5)):
            ttft.append({"workload": "w", "model": "m", "traffic": g, "setup": setup,
                         "capacity_bytes": cap, "prefix_token_hit_ratio": h, "gpu": "H100",
                         "tier": "remote", "hbm_bytes_per_replica": 25.0, "slo_p90_s": 2.0,
                         "replicas": 3 if setup == "no cache" else 1, "meets": True,
                         "ttft_p50_s": 0.5, "ttft_p90_s": 1.5})
    return ExplorerTables(pd.DataFrame(grid), pd.DataFrame(vol), pd.DataFrame(ttft))


def test_card_picks_the_largest_net_savings():
    """V = 1e10, p = 0.15: no cache $1,500; bronze nets 1e10 x 0.3 x 0.15 / 1e6 - 25 = $425,
    silver 750 - 150 = $600: silver, runner-up bronze; break-even 150 / 1500 = 10%."""
    card = build_card(_tables(1e10), "w", "m", book="bucket", tiers=TIERS, usd_per_mtok=0.15,
                      placeholder=True)
    assert card["tier"]["name"] == "silver" and card["tier"]["recommended"]
    assert card["net_savings_usd"]["value"] == pytest.approx(600.0)
    assert card["net_savings_usd"]["basis"] == "modelled"
    assert card["break_even_hit_rate"]["value"] == pytest.approx(0.1)
    assert card["runner_up"]["name"] == "bronze"
    assert card["runner_up"]["net_savings_usd"]["value"] == pytest.approx(425.0)
    assert card["ttft"]["before"]["replicas"]["value"] == 3
    assert card["ttft"]["after"]["replicas"]["value"] == 1
    # 2x traffic: silver nets 2e10 x 0.5 x 0.15 / 1e6 - 150 = $1,350 (same hit rate, 2x savings)
    g2 = next(g for g in card["growth"] if g["traffic"] == 2)
    assert g2["best_tier"] == "silver"
    assert g2["same_tier_net_savings_usd"]["value"] == pytest.approx(1350.0)
    assert "buy bucket silver" in card["answer"] and "PLACEHOLDER" in card["answer"]
    assert "silver for 1 of 1" in headline([card])


def test_card_buys_nothing_when_no_tier_pays():
    """V = 1e8: bronze nets 1e8 x 0.3 x 0.15 / 1e6 - 25 = -$20.50, silver 7.50 - 150 < 0."""
    card = build_card(_tables(1e8), "w", "m", book="bucket", tiers=TIERS, usd_per_mtok=0.15,
                      placeholder=True)
    assert not card["tier"]["recommended"] and card["tier"]["name"] == "bronze"
    assert card["net_savings_usd"]["value"] == 0.0
    assert "buy no bucket" in card["answer"]
    assert card["sensitivity"]["most"] == "fee"
    assert headline([card]).startswith("Buy no bucket tier")


def test_payload_is_the_grid_and_escapes_script_text():
    t = _tables(1e10)
    card = build_card(t, "w", "m", book="bucket", tiers=TIERS, usd_per_mtok=0.15, placeholder=True)
    book = {"name": "</script><b>", "tiers": []}
    from simkv.report.explorer.tables import catalogue_block_bytes

    p = build_payload(t, [book], [card], days_per_month=30.0, slo_p90_s=2.0,
                      model_block_bytes={16: catalogue_block_bytes(16)})
    w = p["workloads"][0]
    assert w["capacities_bytes"] == [100.0, 1000.0, None]
    assert w["runs"]["1"]["hit"] == [[0.3], [0.5], [0.6]]
    assert p["ttls_s"] == [None] and p["traffic"] == [1, 2, 5]
    assert w["block_bytes"] == 10 and w["models"]["m"] == 10
    assert w["models"]["llama-3.1-8b"] == 2 * 1024 * 1024  # 16 tokens x 128 KiB (32 layers x 8 x 128 x 2 x 2)
    text = script_json(p)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == json.loads(json.dumps(p))


def test_measured_checks_quote_the_engine_replay(tmp_path):
    from simkv.report.explorer.section import measured_checks
    from simkv.report.model import ReportContext, ReportOptions

    res = tmp_path / "validate.json"
    res.write_text(json.dumps([{"label": "replay", "predicted_prefix_hit_ratio": 0.61,
                                "measured_prefix_hit_ratio": 0.6, "predicted_ttft_p50_s": 0.05,
                                "measured_ttft_p50_s": 0.04},
                               {"label": "incomplete", "predicted_prefix_hit_ratio": 0.5}]))
    from simkv.report.runview import RunView

    empty = RunView(tmp_path / "no-run")
    got = measured_checks(ReportContext(tmp_path, empty, ReportOptions(measured_path=res)))
    assert [m["label"] for m in got] == ["replay"]
    assert got[0]["basis"] == "measured" and got[0]["source"] == "validate.json"
    assert got[0]["measured_prefix_hit_ratio"] == 0.6
    assert measured_checks(ReportContext(tmp_path, empty, ReportOptions())) == []


def test_slo_is_overridable_and_checked(tmp_path, cli):
    """--ttft-slo-p90-s sizes every replica count in the decision section; a bad value is exit 2."""
    from simkv.report.model import ReportOptions
    from simkv.trace import load_trace
    from tests.conftest import MOONCAKE

    res = cli("report", "--trace", str(MOONCAKE), "--model", "llama-3.1-8b", "--ttft-slo-p90-s", "0",
              "--out", str(tmp_path / "r"))
    assert res.exit_code == 2 and "--ttft-slo-p90-s" in res.stderr and "Traceback" not in res.stderr
    tr = load_trace(MOONCAKE).head(300).with_model("llama-3.1-8b")
    sec = _section_from_run(tmp_path, tr, ReportOptions(quick=True, ttft_slo_p90_s=5.0))
    assert sec.slo_p90_s == 5.0
    decision = json.loads((tmp_path / "out" / "data" / "decision.json").read_text())
    assert decision["slo_ttft_p90_s"] == 5.0
    ttft = pd.read_csv(tmp_path / "out" / "data" / "explorer_ttft.csv")
    assert (ttft["slo_p90_s"] == 5.0).all()
    assert (ttft[ttft["meets"]]["ttft_p90_s"] <= 5.0).all()


def test_no_subscription_book_says_why_and_the_page_still_renders(tmp_path):
    import shutil

    from simkv.report.model import ReportOptions
    from simkv.report.render import render
    from simkv.trace import load_trace
    from tests.conftest import MOONCAKE

    books = tmp_path / "books"
    books.mkdir()
    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "simkv" / "data" / "pricebooks" / "anthropic.yaml", books)
    tr = load_trace(MOONCAKE).head(50).with_model("llama-3.1-8b")
    sec = _section_from_run(tmp_path, tr, ReportOptions(quick=True, pricebooks_dir=books))
    assert sec.status == "unavailable" and "no subscription price book" in sec.missing[0]
    prov = {"simkv_version": "0", "git": {"commit": "abc", "dirty": False}, "command": "c",
            "seed": 0, "packages": {}, "engine": {}, "inputs": [], "pricebooks": []}
    (tmp_path / "page").mkdir()
    html, md = render(tmp_path / "page", sections=[sec], provenance=prov, title="T", subtitle="S",
                      mode="m")
    text = html.read_text()
    assert "no subscription price book" in text and "<script" not in text
    assert "no subscription price book" in md.read_text()


def _section_from_run(tmp_path, trace, opts):
    """Run the explorer stage on ``trace`` into a run folder, then build the section from it."""
    import simkv.pipeline.builtin  # noqa: F401 - registers simkv's stages
    from simkv.pipeline.inputs import RunInputs
    from simkv.pipeline.runner import run_stages
    from simkv.pipeline.workload import WorkloadInput
    from simkv.report.explorer.section import build
    from simkv.report.model import ReportContext
    from simkv.report.runview import RunView

    w = WorkloadInput(name="m", trace=trace, model="llama-3.1-8b", source="m.jsonl", sha256="0" * 64)
    run = tmp_path / "run"
    run_stages(opts, run, RunInputs(given=(w,)), names=["explorer"])
    return build(ReportContext(tmp_path / "out", RunView(run), opts))
