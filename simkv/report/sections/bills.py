"""Section 2: provider bills side by side on each workload, and prefix vs chunk reuse.

Bills come from the price books (``simkv compare``'s machinery, simkv.economics): each book
applies its own caching semantics to the trace, the billed window is extrapolated to a month
after a warm-up.  Prefix vs chunk (CacheBlend-style) reuse is the cache engine's two reuse modes;
no engine here runs CacheBlend, so chunk figures are modelled only.  Tables of the ``bills``,
``simulate`` (reuse) and ``latency`` (reuse TTFT) stages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import ReportContext, Section, Table

KEY = "bills"
TITLE = "Provider bills side by side"
#: the stages whose tables this section reads (its render-cache key covers their outputs)
READS = ('workloads', 'bills', 'simulate', 'latency')
#: price-book kinds that are API prompt caches (priced against their own input price)
API_KINDS = ("anthropic", "openai", "gemini", "deepseek")


def _bills_figure(ctx: ReportContext, sec: Section, frame: pd.DataFrame, data: str) -> None:
    ok = frame[frame["available"] & frame["total_usd"].notna()]
    groups = list(ok.groupby(["workload", "model"], sort=False))
    if not groups:
        return
    heights = [max(1.2, 0.28 * len(g)) for _, g in groups]
    with new_figure(len(groups), 1, figsize=(7.0, 0.8 + sum(heights)),
                    gridspec_kw={"height_ratios": heights}, squeeze=False) as (fig, axes):
        for ax, ((wl, model), g) in zip(axes[:, 0], groups, strict=True):
            g = g.sort_values("total_usd")
            y = np.arange(len(g))
            colors = ["#C44E52" if p else "#4C72B0" for p in g["placeholder"]]
            ax.barh(y, g["no_cache_usd"], color="#DDDDDD", label="same book, no caching")
            ax.barh(y, g["total_usd"], color=colors, height=0.6)
            lo = (g["total_usd"] - g["total_usd_ci_lo"]).clip(lower=0)
            hi = (g["total_usd_ci_hi"] - g["total_usd"]).clip(lower=0)
            if g["total_usd_ci_lo"].notna().any():
                ax.errorbar(g["total_usd"], y, xerr=[lo.fillna(0), hi.fillna(0)], fmt="none",
                            ecolor="black", lw=0.8)
            ax.legend(fontsize=6, loc="lower right")
            ax.set_yticks(y)
            ax.set_yticklabels(g["provider"], fontsize=7)
            ax.set_title(f"{wl} ({model})", fontsize=9)
            ax.set_xlabel("monthly bill ($)")
        sec.figures.append(ctx.figure(
            KEY, fig, title="Monthly bill by price book, per workload",
            caption=("Each book's monthly bill on the workload (window extrapolated to a month after "
                     "the warm-up), 95% bootstrap interval over sessions; grey: the same book's bill "
                     "with no caching. Red bars use PLACEHOLDER prices."),
            data_file=data, basis="modelled"))


def _chunk_part(ctx: ReportContext, sec: Section) -> None:
    reuse = ctx.run.table("simulate", "reuse")
    if reuse.empty:
        sec.mark_missing("prefix vs chunk reuse: no workload carries per-block content hashes")
        return
    lat = ctx.run.facts("latency")
    ttft_gpu, ttft_tier = lat["ttft_gpu"], lat["ttft_tier"]
    share = ctx.run.facts("simulate")["blend_recompute_share"]
    frame = reuse.merge(ctx.run.table("latency", "reuse_ttft"), on="workload", how="left",
                        sort=False)
    rows = frame.to_dict("records")
    data = ctx.write_data("reuse_prefix_vs_chunk", frame)
    if "chunk_ttft_p50_s" in frame:
        slo = lat.get("slo_p90_s")
        has_n = "prefix_replicas" in frame
        sec.tables.append(Table(
            f"Prefix vs chunk reuse, unlimited bucket on a {ttft_tier} tier, {ttft_gpu} replicas "
            f"sized to TTFT p90 <= {slo:g} s (modelled only)" if slo is not None else
            f"Prefix vs chunk reuse, unlimited bucket on a {ttft_tier} tier (modelled only)",
            ("workload", "prefix reuse", "chunk reuse", "TTFT p50 prefix", "TTFT p50 chunk",
             "TTFT p90 prefix", "TTFT p90 chunk", "replicas prefix", "replicas chunk"),
            tuple((r.workload, fmt.pct(r.prefix_token_hit_ratio), fmt.pct(r.chunk_token_reuse_ratio),
                   fmt.ms(r.prefix_ttft_p50_s), fmt.ms(r.chunk_ttft_p50_s), fmt.ms(r.prefix_ttft_p90_s),
                   fmt.ms(r.chunk_ttft_p90_s),
                   *((fmt.replicas(r.prefix_replicas, r.prefix_meets_slo, r.prefix_over_slo_factor),
                      fmt.replicas(r.chunk_replicas, r.chunk_meets_slo, r.chunk_over_slo_factor))
                     if has_n else ("n/a", "n/a"))) for r in frame.itertuples()),
            data_file=data))
    with new_figure() as (fig, ax):
        x = np.arange(len(frame))
        ax.bar(x - 0.2, frame["prefix_token_hit_ratio"] * 100, 0.4, label="prefix reuse")
        ax.bar(x + 0.2, frame["chunk_token_reuse_ratio"] * 100, 0.4,
               label=f"chunk reuse (net of {share:.0%} recompute)")
        ax.set_xticks(x)
        ax.set_xticklabels(frame["workload"], fontsize=8, rotation=20, ha="right")
        ax.set_ylabel("input tokens reused (%)")
        ax.legend(fontsize=7)
        sec.figures.append(ctx.figure(
            KEY, fig, title="Prefix vs chunk (CacheBlend-style) reuse, unlimited cache",
            caption=("Share of input tokens served from an unlimited cache with prefix reuse "
                     "and with chunk reuse (a block hits wherever its content appeared before; "
                     f"{share:.0%} of non-prefix hit tokens recomputed). Chunk "
                     "figures are modelled only: no engine here runs CacheBlend."),
            data_file=data, basis="modelled"))
    for r in rows:
        gain = r["chunk_token_reuse_ratio"] - r["prefix_token_hit_ratio"]
        sec.readings.append(
            f"{r['workload']}: prefix caching reuses {fmt.pct(r['prefix_token_hit_ratio'])} of input "
            f"tokens; chunk reuse would reuse {fmt.pct(r['chunk_token_reuse_ratio'])} "
            f"({'+' if gain >= 0 else ''}{100 * gain:.1f} points), modelled only.")
    # dollars with chunk reuse, for the books that can buy it
    chunk_bills = ctx.run.has_table("bills", "bills_chunk")
    if chunk_bills:
        cf = ctx.run.table("bills", "bills_chunk")
        cdata = ctx.write_data("bills_chunk", cf)
        sec.tables.append(Table(
            "Bills with chunk reuse (self-managed stores only; modelled only)",
            ("workload", "model", "book", "hit rate", "monthly bill", "savings"),
            tuple((r.workload, r.model, r.provider, fmt.pct(r.hit_rate), fmt.usd(r.total_usd),
                   fmt.usd(r.savings_usd)) for r in cf.itertuples()),
            data_file=cdata))


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, TITLE)
    sec.intro = ("What each way of buying prefix reuse would bill a month for the same traffic: "
                 "API prompt caches (Anthropic 5 min / 1 h, OpenAI, Gemini, DeepSeek), a "
                 "persistent subscription bucket by tier, raw storage and self-hosted GPUs.")
    rows = ctx.run.has_table("bills", "bills")
    if rows:
        frame = ctx.run.table("bills", "bills")
        data = ctx.write_data("bills", frame)
        _bills_figure(ctx, sec, frame, data)
        ok = frame[frame["available"] & frame["total_usd"].notna()]
        heads = []
        for (wl, model), g in ok.groupby(["workload", "model"], sort=False):
            # marginal GPU-seconds is a second line, not a way to buy reuse: the fleet is the bill
            buyable = g[~g["provider"].str.endswith(":marginal-gpu-seconds")]
            pool = buyable if not buyable.empty else g
            best = pool.loc[pool["total_usd"].idxmin()]
            lo, hi = pool.loc[pool["no_cache_usd"].idxmin()], pool.loc[pool["no_cache_usd"].idxmax()]
            api = g[g["kind"].isin(API_KINDS)]
            text = (f"{wl} ({model}): without caching these books would bill from "
                    f"{fmt.usd(lo['no_cache_usd'])} ({lo['provider']}) to {fmt.usd(hi['no_cache_usd'])} "
                    f"({hi['provider']}) a month, since their input prices differ. The cheapest option "
                    f"with caching is {best['provider']} at {fmt.usd(best['total_usd'])} "
                    f"(hit rate {fmt.pct(best['hit_rate'])})"
                    + (", a PLACEHOLDER price" if best["placeholder"] else ""))
            if not api.empty:
                a = api.loc[api["savings_share"].idxmax()]
                text += (f"; among API prompt caches {a['provider']} saves the largest share of its own "
                         f"no-cache bill: {fmt.pct(a['savings_share'])} ({fmt.usd(a['savings_usd'])}).")
            else:
                text += "."
            sec.readings.append(text)
            heads.append(f"{wl}: {best['provider']} {fmt.usd(best['total_usd'])}"
                         + (" (PLACEHOLDER price)" if best["placeholder"] else
                            " (derived price)" if best["status"] == "derived" else ""))
        sec.headline = "Cheapest way to buy the reuse, per month: " + "; ".join(heads) + "."
        unavailable = frame[~frame["available"]]
        for (provider, notes), g in unavailable.groupby(["provider", "notes"], sort=False):
            sec.readings.append(f"{provider} was not billed on {', '.join(dict.fromkeys(g['workload']))}: "
                                f"{notes}")
        sec.assumptions.append(
            "Prices per book: " + ", ".join(
                f"{p} {st}" for p, st in frame.drop_duplicates("provider")[["provider", "status"]]
                .itertuples(index=False)) + " (published: the provider's own page; derived: a "
            "secondary page, a computed figure or an assumption; placeholder: no public price). "
            "Self-hosted is billed as the fleet serving the busiest hour within TTFT p90 <= the "
            "book's objective, with and without the cache; marginal GPU-seconds is a second line.")
        if frame["placeholder"].any():
            sec.assumptions.append("Subscription tier sizes and prices (and any book marked "
                                   "placeholder) are PLACEHOLDER figures, not published prices: "
                                   "replace them in a price book YAML (--pricebooks DIR).")
        if frame.groupby("workload")["model"].nunique().max() > 1:
            sec.assumptions.append("A workload that mixes models is billed per model: each model's "
                                   "requests form their own trace (provider caches are per model).")
        rules = frame["warmup_rule"].dropna().astype(str)
        if len(rules):
            filling = int(rules.str.contains("still filling").sum())
            sec.assumptions.append(
                f"Warm-up discarded before extrapolating to a month: {ctx.run.facts('bills')['warmup']}; each "
                f"bill's rule and length are in {data} (warmup_rule)"
                + (f"; {filling} of {len(rules)} bills discarded half the window because the cache "
                   "was still filling there" if filling else "")
                + f". A month is {ctx.options.days_per_month:g} days.")
    _chunk_part(ctx, sec)
    if not rows and not sec.figures:
        sec.status = "unavailable"
    return sec
