"""Which subscription tier to buy: the smallest one capturing a target share of the savings.

Achievable savings are those of an unlimited bucket under the same policy (recompute avoided,
before any subscription price).  A tier *captures* its own recompute avoided divided by that.
The recommendation is the smallest tier capturing at least ``target_share`` (optionally also
meeting a TTFT service-level objective through the latency model), with its break-even hit rate
(the hit rate at which the recompute avoided equals the tier's price), its payback (days of
savings that pay for one month of the tier), and the same choice under traffic growth
(:mod:`simkv.economics.growth`).
"""

from __future__ import annotations

from simkv.economics.context import BillContext
from simkv.economics.growth import grow
from simkv.economics.kinds.subscription import SubscriptionBook, Tier
from simkv.economics.latency_hooks import slo_evaluate
from simkv.economics.pricebook import PLACEHOLDER_NOTE
from simkv.economics.window import WarmupSpec
from simkv.errors import InputError
from simkv.trace.model import Trace
from simkv.units import format_bytes


def _gross(summary: dict) -> float:
    """Recompute dollars avoided per month (savings before the subscription price)."""
    return summary["no_cache_usd"] - summary["components_usd"].get("recompute_usd", 0.0)


def evaluate_tiers(ctx: BillContext, book: SubscriptionBook, target_share: float,
                   ttft_p90_slo_s: float | None = None, gpu: str = "H100") -> dict:
    """Every tier's outcome on one context, and the smallest tier meeting the target."""
    # one billed window for every tier: the warm-up lasts until the slowest cache first fills
    fills = [ctx.run(ctx.cache_config(capacity_bytes=t.capacity, policy=book.policy)).first_fill_s
             for t in book.sorted_tiers() if t.capacity > 0]
    fills = [f for f in fills if f is not None]
    ctx.fixed_window = None
    ctx.fixed_window = ctx.window(None if not fills else _FillOnly(max(fills)))
    unlimited = book.tier_bill(ctx, None).summary()
    achievable = _gross(unlimited)
    tiers, choice = [], None
    slo_reason = None
    for tier in book.sorted_tiers():
        s = book.tier_bill(ctx, tier).summary()
        gross = _gross(s)
        share = gross / achievable if achievable > 0 else (1.0 if tier.capacity == 0 else 0.0)
        row = {"tier": tier.name, "capacity_bytes": tier.capacity,
               "usd_per_month": tier.usd_per_month, "hit_rate": s["hit_rate"],
               "gross_savings_usd": gross, "net_savings_usd": s["savings_usd"],
               "captured_share": share, "tokens_input": s["tokens_input"],
               "warmup_rule": s["warmup_rule"]}
        if ttft_p90_slo_s is not None:
            row["meets_slo"] = None
            # the (costly) latency check only where the savings target is met, until a choice
            if slo_reason is None and choice is None and share >= target_share:
                cfg = (ctx.cache_config(capacity_bytes=tier.capacity, policy=book.policy)
                       if tier.capacity > 0 else ctx.cache_config(capacity_blocks=0))
                res, why = slo_evaluate(ctx.trace, cfg, ctx.spec, ttft_p90_slo_s=ttft_p90_slo_s,
                                        gpu=gpu)
                if res is None:
                    slo_reason = why
                else:
                    row["meets_slo"] = bool(res["meets_slo"])
                    row["slo"] = {k: v for k, v in res.items()}
        tiers.append(row)
        ok = share >= target_share and row.get("meets_slo") in (None, True)
        if choice is None and ok:
            choice = row
    return {"achievable_savings_usd": achievable, "unlimited_hit_rate": unlimited["hit_rate"],
            "tiers": tiers, "choice": choice, "slo_unavailable": slo_reason,
            "warmup_rule": unlimited["warmup_rule"]}


class _FillOnly:
    """Stands in for a CacheRun where only the first-fill time matters."""

    def __init__(self, first_fill_s: float) -> None:
        self.first_fill_s = first_fill_s


def _break_even(row: dict, usd_per_mtok: float) -> float | None:
    denom = row["tokens_input"] * usd_per_mtok / 1e6
    return row["usd_per_month"] / denom if denom > 0 else None


def recommend(trace: Trace, model: str | None, book: SubscriptionBook, *,
              target_share: float = 0.95, growth: tuple[int, ...] = (2, 5),
              ttft_p90_slo_s: float | None = None, gpu: str = "H100",
              warmup: WarmupSpec | None = None, days_per_month: float = 30.0,
              reuse: str = "prefix", blend_recompute_share: float = 0.0) -> dict:
    """The recommendation as a dict with plain-language ``reasoning`` lines."""
    if not 0.0 < target_share <= 1.0:
        raise InputError("must be within (0, 1]", where="--target-share")
    growth = tuple(growth)
    for g in growth:
        grow(trace.head(2), g)  # validates the factor before any simulation
    kw = dict(reuse=reuse, blend_recompute_share=blend_recompute_share, warmup=warmup,
              days_per_month=days_per_month, n_boot=0)
    ctx = BillContext(trace, model, **kw)
    base = evaluate_tiers(ctx, book, target_share, ttft_p90_slo_s, gpu)
    p = book.recompute_usd_per_mtok
    choice = base["choice"]
    lines = []
    ach = base["achievable_savings_usd"]
    lines.append(f"An unlimited bucket ({book.policy}) would serve {base['unlimited_hit_rate']:.1%} "
                 f"of input tokens from cache: ${ach:,.2f}/month of recompute avoided at "
                 f"${p:g}/MTok (the achievable savings).")
    lines.append("Share of it each tier captures: " + ", ".join(
        f"{r['tier']} ({format_bytes(r['capacity_bytes'])}) {r['captured_share']:.0%}"
        for r in base["tiers"]) + ".")
    out = {"model": ctx.spec.name, "pricebook": book.name, "policy": book.policy,
           "target_share": target_share, "achievable_savings_usd": ach,
           "unlimited_hit_rate": base["unlimited_hit_rate"], "tiers": base["tiers"],
           "recommended_tier": None, "hit_rate": None, "break_even_hit_rate": None,
           "payback_days": None, "net_savings_usd": None, "warmup_rule": base["warmup_rule"],
           "placeholder": book.placeholder}
    if choice is None:
        best = base["tiers"][-1]
        lines.append(f"No tier captures {target_share:.0%}"
                     + (" while meeting the TTFT objective" if ttft_p90_slo_s is not None else "")
                     + f"; the largest, {best['tier']}, captures {best['captured_share']:.0%}.")
    else:
        out["recommended_tier"] = choice["tier"]
        out["hit_rate"] = choice["hit_rate"]
        out["net_savings_usd"] = choice["net_savings_usd"]
        be = _break_even(choice, p)
        out["break_even_hit_rate"] = be
        per_day = choice["gross_savings_usd"] / days_per_month
        out["payback_days"] = (choice["usd_per_month"] / per_day if per_day > 0 else None)
        lines.append(f"Smallest tier capturing at least {target_share:.0%}: {choice['tier']} "
                     f"({format_bytes(choice['capacity_bytes'])}, ${choice['usd_per_month']:,.2f}"
                     f"/month), net savings ${choice['net_savings_usd']:,.2f}/month.")
        if be is not None:
            verdict = "pays for itself" if choice["hit_rate"] >= be else "does NOT pay for itself"
            pb = ("" if out["payback_days"] is None
                  else f"; a month of it is paid back by {out['payback_days']:.1f} days of savings")
            lines.append(f"It breaks even at a {be:.2%} token hit rate and reaches "
                         f"{choice['hit_rate']:.1%}, so it {verdict}{pb}.")
        best_net = max(base["tiers"], key=lambda r: r["net_savings_usd"])
        if best_net["tier"] != choice["tier"]:
            lines.append(f"(Largest net savings: {best_net['tier']}, "
                         f"${best_net['net_savings_usd']:,.2f}/month.)")
    if ttft_p90_slo_s is not None:
        if base["slo_unavailable"]:
            out["slo"] = {"available": False, "reason": base["slo_unavailable"]}
            lines.append(f"TTFT objective (p90 <= {ttft_p90_slo_s:g} s) not checked: "
                         f"{base['slo_unavailable']}.")
        else:
            out["slo"] = {"available": True, "ttft_p90_slo_s": ttft_p90_slo_s}
            if choice is not None and choice.get("slo"):
                s = choice["slo"]
                out["slo"].update(s)
                lines.append(f"TTFT p90 <= {ttft_p90_slo_s:g} s on {gpu}: {choice['tier']} needs "
                             f"{s.get('gpus_needed')} GPU(s) vs {s.get('gpus_needed_no_cache')} "
                             f"without a cache (GPUs saved: {s.get('gpus_saved')}).")
    growth_rows = []
    for g in growth:
        gctx = BillContext(grow(ctx.trace, g), None, **kw)
        res = evaluate_tiers(gctx, book, target_share)
        c = res["choice"]
        growth_rows.append({"factor": g, "recommended_tier": None if c is None else c["tier"],
                            "achievable_savings_usd": res["achievable_savings_usd"],
                            "captured_share": {r["tier"]: r["captured_share"] for r in res["tiers"]}})
        lines.append(f"At {g}x traffic ({g} copies of the sessions with fresh content): "
                     + (f"{c['tier']}." if c is not None else
                        f"no tier reaches {target_share:.0%} (largest: "
                        f"{res['tiers'][-1]['captured_share']:.0%})."))
    out["growth"] = growth_rows
    out["growth_model"] = "session copies with fresh block hashes, interleaved in time"
    lines.append(f"Warm-up: {base['warmup_rule']}; figures are per month of "
                 f"{days_per_month:g} days.")
    if book.placeholder:
        out["placeholder_note"] = PLACEHOLDER_NOTE
        lines.append(f"Tier sizes and prices are {PLACEHOLDER_NOTE}.")
    out["reasoning"] = lines
    return out


__all__ = ["recommend", "evaluate_tiers", "Tier"]
