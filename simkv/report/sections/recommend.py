"""Section 4: the tier recommendation with its reasoning, break-even and growth sensitivity.

The recommendation is ``simkv recommend``'s (simkv.economics.recommend): the subscription tier
with the largest net monthly savings after its price, the runner-up, its break-even prefix-token
hit rate and payback, and the choice again if traffic grows 2x or 5x.  Tables of
the ``recommend`` stage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import ReportContext, Section, Table

KEY = "recommend"
TITLE = "Which tier to buy"
#: the stages whose tables this section reads (its render-cache key covers their outputs)
READS = ('workloads', 'recommend')
TARGET_SHARE = 0.95


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, TITLE)
    sec.intro = ("The subscription tier with the largest net monthly savings after its price on the "
                 "same traffic (never one that loses money while another pays), the runner-up, "
                 "when it pays back, and whether the choice holds if traffic grows.")
    facts = ctx.run.facts("recommend") if ctx.run.has("recommend") else {
        "missing": "the recommend stage did not run"}
    if "missing" in facts:
        sec.status = "unavailable"
        sec.mark_missing(f"recommendation: {facts['missing']}")
        return sec
    recs = [(r["workload"], r["model"], r) for r in facts["recommendations"]]
    placeholder = facts["book_placeholder"]
    summary = ctx.run.table("recommend", "recommendation")
    data = ctx.write_data("recommendation", summary)
    sec.tables.append(Table(
        "Recommendation per workload",
        ("workload", "model", "tier", "prefix-token hit rate", "break-even hit rate",
         "net savings / month", "payback", "runner-up"),
        tuple((r.workload, r.model, r.recommended_tier or "none", fmt.pct(r.hit_rate),
               fmt.pct(r.break_even_hit_rate, 2), fmt.usd(r.net_savings_usd),
               "n/a" if r.payback_days is None or pd.isna(r.payback_days)
               else f"{r.payback_days:.1f} days", r.runner_up or "none")
              for r in summary.itertuples()),
        data_file=data))
    for wl, m, r in recs:
        # the warm-up and placeholder lines repeat for every workload: stated once below
        lines = [x for x in r["reasoning"] if not x.startswith(("Warm-up:", "Tier sizes and prices"))]
        sec.readings.append(f"{wl} ({m}): " + " ".join(lines))
    sec.headline = "Recommended tier: " + "; ".join(
        f"{wl} ({m}) {r['recommended_tier'] or 'none pays'}" for wl, m, r in recs) + "." + (
        " Tier sizes and prices are PLACEHOLDERS." if placeholder else "")
    tiers = ctx.run.table("recommend", "recommendation_tiers")
    tfile = ctx.write_data("recommendation_tiers", tiers)
    with new_figure(1, 2, figsize=(8.5, 3.4)) as (fig, (ax1, ax2)):
        for (wl, m), g in tiers.groupby(["workload", "model"], sort=False):
            x = np.arange(len(g))
            ax1.plot(x, g["captured_share"] * 100, marker="o", label=f"{wl} ({m})")
            ax2.plot(x, g["net_savings_usd"], marker="o", label=f"{wl} ({m})")
        names = list(dict.fromkeys(tiers["tier"]))
        for ax in (ax1, ax2):
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, fontsize=8)
            ax.set_xlabel("tier (ascending capacity)")
        ax1.axhline(TARGET_SHARE * 100, color="black", ls="--", lw=1, label=f"target {TARGET_SHARE:.0%}")
        ax1.set_ylabel("achievable savings captured (%)")
        ax2.axhline(0, color="black", lw=0.8)
        ax2.set_ylabel("net savings ($ / month)")
        ax1.legend(fontsize=6)
        sec.figures.append(ctx.figure(
            KEY, fig, title="Savings captured and net savings by tier",
            caption=("Left: share of the unlimited bucket's recompute savings each tier captures; "
                     "right: savings net of the tier's price, per month."
                     + (" Tier sizes and prices are PLACEHOLDERS." if placeholder else "")),
            data_file=tfile, basis="modelled"))
    if ctx.run.has_table("recommend", "recommendation_growth"):
        growth = ctx.run.table("recommend", "recommendation_growth")
        gfile = ctx.write_data("recommendation_growth", growth)
        base = summary[["workload", "model", "recommended_tier"]].assign(factor=1)
        both = pd.concat([base, growth[["workload", "model", "factor", "recommended_tier"]]])
        sec.tables.append(Table(
            "Growth sensitivity: recommended tier at 1x, 2x and 5x traffic",
            ("workload", "model") + tuple(f"{f}x" for f in sorted(both["factor"].unique())),
            tuple((wl, m) + tuple(str(g[g["factor"] == f]["recommended_tier"].iloc[0] or "none")
                                  for f in sorted(both["factor"].unique()))
                  for (wl, m), g in both.groupby(["workload", "model"], sort=False)),
            data_file=gfile))
        sec.assumptions.append("Growth is modelled as copies of the sessions with fresh block "
                               "hashes, interleaved in time (shared system prompts stay shared).")
    sec.assumptions.append("Warm-up and month as in the bills (section on provider bills); each "
                           f"recommendation's own warm-up rule is in {data} (reasoning).")
    if placeholder:
        sec.assumptions.append("Tier sizes and prices are PLACEHOLDER figures (not published "
                               "prices): give your own with --tiers tiers.yaml.")
    return sec
