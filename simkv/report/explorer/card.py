"""The decision card: per workload, what to buy, what it saves, when it breaks even, the TTFT it
gives at a replica count that serves the load, and the assumption the answer rests on most.

Why: the report used to spread that answer over three sections that disagreed.  A card is built
from the explorer's tables only (:mod:`simkv.report.explorer.tables`) and one subscription book,
so the card and the in-page explorer's default point are the same computation.  The pick is the
tier with the largest net monthly savings after its price (a money-losing tier is never picked
while another pays; when none pays, the card says buy none), with the runner-up named.  Every
number is ``{"value", "basis", "source"}``: ``basis`` is ``modelled`` (simkv's simulation) or
``measured`` (a real engine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from simkv.report import fmt
from simkv.report.explorer import sensitivity
from simkv.report.explorer.frames import TRAFFIC, ExplorerTables
from simkv.report.explorer.money import TierPrice, month

GRID_FILE, VOLUME_FILE, TTFT_FILE = ("data/explorer_grid.csv", "data/explorer_volume.csv",
                                     "data/explorer_ttft.csv")


def num(value: float | int | None, source: str, basis: str = "modelled") -> dict:
    return {"value": None if value is None or (isinstance(value, float) and math.isnan(value))
            else value, "basis": basis, "source": source}


def hit_at(grid: pd.DataFrame, workload: str, model: str, traffic: int, capacity_bytes: float,
           ttl_s: float | None = None) -> float:
    """The grid's exact hit ratio at one computed point (KeyError if it was not computed)."""
    g = grid[(grid["workload"] == workload) & (grid["model"] == model) & (grid["traffic"] == traffic)]
    g = g[g["capacity_bytes"] == capacity_bytes]
    g = g[g["ttl_s"].isna()] if ttl_s is None else g[g["ttl_s"] == ttl_s]
    if len(g) != 1:
        raise KeyError(f"no grid point {workload}/{model} {traffic}x {capacity_bytes} {ttl_s}")
    return float(g["prefix_token_hit_ratio"].iloc[0])


def _volume(t: ExplorerTables, workload: str, model: str, traffic: int) -> pd.Series:
    v = t.volume
    return v[(v["workload"] == workload) & (v["model"] == model) & (v["traffic"] == traffic)].iloc[0]


def _ttft(t: ExplorerTables, workload: str, model: str, setup: str) -> dict:
    x = t.ttft
    r = x[(x["workload"] == workload) & (x["model"] == model) & (x["traffic"] == 1)
          & (x["setup"] == setup)].iloc[0]
    src = f"{TTFT_FILE} (setup {setup}, 1x)"
    return {"setup": setup, "replicas": num(int(r["replicas"]), src), "meets_slo": bool(r["meets"]),
            "ttft_p50_s": num(float(r["ttft_p50_s"]), src),
            "ttft_p90_s": num(float(r["ttft_p90_s"]), src),
            "hit_rate": num(float(r["prefix_token_hit_ratio"]), src), "gpu": str(r["gpu"]),
            "tier": str(r["tier"]), "hbm_bytes_per_replica": float(r["hbm_bytes_per_replica"])}


def tier_outcomes(t: ExplorerTables, workload: str, model: str, tiers: Sequence[TierPrice],
                  usd_per_mtok: float, traffic: int = 1) -> list[dict]:
    """Every paid tier's month at ``traffic``, from the exact grid (no TTL: a bucket has none)."""
    v = float(_volume(t, workload, model, traffic)["input_tokens_per_month"])
    out = []
    for tier in tiers:
        if tier.capacity_bytes <= 0:
            continue
        h = hit_at(t.grid, workload, model, traffic, float(tier.capacity_bytes))
        m = month(v, h, usd_per_mtok, tier.usd_per_month)
        out.append({"tier": tier, "hit_rate": h, "month": m, "tokens_month": v})
    return out


def _answer(workload: str, model: str, pick: dict | None, book: str, placeholder: bool) -> str:
    if pick is None:
        return (f"{workload} ({model}): buy no bucket: no tier of {book} saves more than it costs "
                "on this traffic.")
    tier, m = pick["tier"], pick["month"]
    return (f"{workload} ({model}): buy {book} {tier.name} ({fmt.size(tier.capacity_bytes)}, "
            f"{fmt.usd(tier.usd_per_month)}/month{', PLACEHOLDER price' if placeholder else ''}); "
            f"it saves {fmt.usd(m.net_savings_usd)} a month net of its price "
            f"(hit rate {fmt.pct(pick['hit_rate'])}, break-even {fmt.pct(m.break_even_hit_rate, 2)}).")


def build_card(t: ExplorerTables, workload: str, model: str, *, book: str,
               tiers: Sequence[TierPrice], usd_per_mtok: float, placeholder: bool) -> dict:
    """One card (a JSON-ready dict); see the module docstring."""
    outcomes = tier_outcomes(t, workload, model, tiers, usd_per_mtok)
    ranked = sorted(outcomes, key=lambda o: -o["month"].net_savings_usd)
    pick = ranked[0] if ranked and ranked[0]["month"].net_savings_usd > 0 else None
    runner = next((o for o in ranked if o is not pick), None)
    src = f"{GRID_FILE} + {VOLUME_FILE}, tier capacity, no TTL, 1x"
    card: dict = {"workload": workload, "model": model, "book": book, "placeholder": placeholder,
                  "recompute_usd_per_mtok": usd_per_mtok,
                  "answer": _answer(workload, model, pick, book, placeholder),
                  "tier": None, "runner_up": None}
    chosen = pick or (ranked[0] if ranked else None)
    if chosen is not None:
        tier, m = chosen["tier"], chosen["month"]
        card["tier"] = {"name": tier.name, "capacity_bytes": tier.capacity_bytes,
                        "usd_per_month": tier.usd_per_month, "recommended": pick is not None}
        card.update({"ttl_s": None, "hit_rate": num(chosen["hit_rate"], src),
                     "input_tokens_per_month": num(chosen["tokens_month"], VOLUME_FILE),
                     "no_cache_usd": num(m.no_cache_usd, src), "bill_usd": num(m.bill_usd, src),
                     "net_savings_usd": num(m.net_savings_usd if pick else 0.0, src),
                     "break_even_hit_rate": num(m.break_even_hit_rate, src)})
        swings = sensitivity.swings(chosen["tokens_month"], chosen["hit_rate"], usd_per_mtok,
                                    tier.usd_per_month, fee_placeholder=placeholder)
        top, tied = sensitivity.most_sensitive(swings)
        card["sensitivity"] = {"most": top.name, "label": top.label,
                               "tied": [s.name for s in tied], "sentence": sensitivity.sentence(swings),
                               "short": sensitivity.short(swings, placeholder),
                               "swings": [{"input": s.name, "low_usd": s.low_usd,
                                           "high_usd": s.high_usd} for s in swings]}
        card["ttft"] = {"before": _ttft(t, workload, model, "no cache"),
                        "after": _ttft(t, workload, model, tier.name)}
    if runner is not None:
        card["runner_up"] = {"name": runner["tier"].name,
                             "net_savings_usd": num(runner["month"].net_savings_usd, src)}
    card["growth"] = [_growth(t, workload, model, tiers, usd_per_mtok, g, card["tier"])
                      for g in TRAFFIC if g != 1]
    return card


def _growth(t: ExplorerTables, workload: str, model: str, tiers: Sequence[TierPrice],
            usd_per_mtok: float, g: int, chosen: dict | None) -> dict:
    outs = tier_outcomes(t, workload, model, tiers, usd_per_mtok, traffic=g)
    best = max(outs, key=lambda o: o["month"].net_savings_usd) if outs else None
    same = next((o for o in outs if chosen and o["tier"].name == chosen["name"]), None)
    src = f"{GRID_FILE} + {VOLUME_FILE}, {g}x"
    return {"traffic": g,
            "best_tier": None if best is None or best["month"].net_savings_usd <= 0
            else best["tier"].name,
            "best_net_savings_usd": num(None if best is None else best["month"].net_savings_usd, src),
            "same_tier_net_savings_usd": num(None if same is None else same["month"].net_savings_usd,
                                             src)}


def headline(cards: Sequence[dict]) -> str:
    """The report's first sentence: what to buy where, and the total it saves."""
    buy = [c for c in cards if c.get("tier") and c["tier"]["recommended"]]
    skip = [c for c in cards if c not in buy]
    if not buy:
        return "Buy no bucket tier: on none of the workloads do its savings cover its price."
    by_tier: dict[str, list[str]] = {}
    for c in buy:
        by_tier.setdefault(c["tier"]["name"], []).append(c["workload"])
    total = sum(c["net_savings_usd"]["value"] for c in buy)
    parts = [f"{name} for {len(ws)} of {len(cards)}" for name, ws in by_tier.items()]
    text = (f"Buy the {cards[0]['book']} tier {' and '.join(parts)} workload(s): together "
            f"{fmt.usd(total)} a month net of the tiers' prices (modelled"
            + (", PLACEHOLDER tier prices)" if cards[0]["placeholder"] else ")"))
    if skip:
        text += "; buy nothing for " + ", ".join(f"{c['workload']} ({c['model']})" for c in skip)
    return text + "."


def ttft_sentence(card: dict) -> str:
    """TTFT before and after, at the sized replica counts, in one sentence."""
    tt = card.get("ttft")
    if not tt:
        return ""
    b, a = tt["before"], tt["after"]

    def side(x: dict) -> str:
        text = (f"p50 {fmt.ms(x['ttft_p50_s']['value'])} / p90 {fmt.ms(x['ttft_p90_s']['value'])} "
                f"on {x['replicas']['value']} {x['gpu']}")
        return text if x["meets_slo"] else text + " (cannot meet the SLO)"

    return f"TTFT without cache {side(b)}; with it {side(a)}."
