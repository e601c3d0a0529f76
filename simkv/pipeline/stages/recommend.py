"""Stage ``recommend``: ``simkv recommend``'s tier choice per workload (the smallest tier
capturing 95% of an unlimited bucket's savings), each tier's numbers, and the choice at 2x and
5x traffic (report section 4).  Reads the price books or ``--tiers``."""

from __future__ import annotations

import pandas as pd

from simkv.errors import InputError
from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage
from simkv.pipeline.stages.bills import per_model

GROWTH = (2, 5)
TARGET_SHARE = 0.95


def subscription_book(ctx: StageContext):
    """The tiers: --tiers FILE, else the first subscription book among the price books."""
    from simkv.economics.kinds.subscription import SubscriptionBook
    from simkv.economics.pricebook import load_pricebook, load_pricebooks

    if ctx.options.tiers_path is not None:
        book = load_pricebook(ctx.options.tiers_path)
        if not isinstance(book, SubscriptionBook):
            raise InputError(f"needs a subscription price book, got kind {book.kind!r}",
                             source=ctx.options.tiers_path, where="--tiers")
        return book
    subs = [b for b in load_pricebooks(ctx.options.pricebooks_dir) if isinstance(b, SubscriptionBook)]
    return subs[0] if subs else None


def run(ctx: StageContext) -> StageOutput:
    from simkv.economics.recommend import recommend

    book = subscription_book(ctx)
    if book is None:
        return StageOutput(facts={"missing": "no subscription price book among the price books "
                                             "(give --tiers FILE)"})
    recs, tier_rows, growth_rows = [], [], []
    for w in ctx.workloads():
        for model, trace in per_model(w):
            r = recommend(trace, None, book, target_share=TARGET_SHARE, growth=GROWTH,
                          days_per_month=ctx.options.days_per_month)
            recs.append({"workload": w.name, "model": model, "recommended_tier": r["recommended_tier"],
                         "reasoning": list(r["reasoning"])})
            tier_rows += [{"workload": w.name, "model": model, **t} for t in r["tiers"]]
            growth_rows += [{"workload": w.name, "model": model, "factor": g["factor"],
                             "recommended_tier": g["recommended_tier"],
                             "achievable_savings_usd": g["achievable_savings_usd"]} for g in r["growth"]]
            recs[-1]["row"] = {
                "workload": w.name, "model": model, "pricebook": r["pricebook"],
                "recommended_tier": r["recommended_tier"], "hit_rate": r["hit_rate"],
                "unlimited_hit_rate": r["unlimited_hit_rate"],
                "achievable_savings_usd": r["achievable_savings_usd"],
                "net_savings_usd": r["net_savings_usd"], "break_even_hit_rate": r["break_even_hit_rate"],
                "payback_days": r["payback_days"], "placeholder": r["placeholder"],
                "net_monthly_savings_usd": r["net_monthly_savings_usd"],
                "break_even_prefix_hit_rate": r["break_even_prefix_hit_rate"],
                "runner_up": (r["runner_up"] or {}).get("tier"),
                "runner_up_net_monthly_savings_usd": (r["runner_up"] or {}).get("net_monthly_savings_usd"),
                "pricebook_status": r["pricebook_status"],
                "reasoning": " | ".join(r["reasoning"])}
    tables = {"recommendation": pd.DataFrame([x.pop("row") for x in recs]),
              "recommendation_tiers": pd.DataFrame(tier_rows)}
    if growth_rows:
        tables["recommendation_growth"] = pd.DataFrame(growth_rows)
    return StageOutput(tables=tables, facts={"recommendations": recs,
                                             "book_placeholder": bool(book.placeholder),
                                             "target_share": TARGET_SHARE})


register_stage(Stage("recommend", "recommendation", run, needs=("workloads",),
                     reads=("pricebooks", "tiers"), options=("days_per_month",)))
