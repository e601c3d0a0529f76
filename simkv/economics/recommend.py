"""Which subscription tier to buy: the one with the largest NET monthly savings after its price.

For every tier the bucket is run through the cache engine on one billed window (the warm-up
lasts until the slowest tier's cache first fills), and its figures are (field names that the
report and explorer read):

- ``gross_savings_usd``: recompute avoided per month (before the tier's price);
- ``net_monthly_savings_usd`` (also ``net_savings_usd``): gross minus the tier's price;
- ``hit_rate``: the prefix-token hit rate, the billing basis (hit tokens / input tokens);
- ``break_even_prefix_hit_rate``: the hit rate at which recompute avoided equals the price,
  ``price / (monthly input tokens x $/MTok)``;
- ``payback_days``: days of the tier's savings that pay one month's fee, ``price / (gross /
  days_per_month)`` (None when it saves nothing);
- ``captured_share``: its gross over that of an unlimited bucket (the achievable savings).

The pick (``recommended_tier``) is the tier with the largest net savings among those that save
money (net > 0) and, with a TTFT objective, meet it; ties go to the smaller tier.  A tier that
loses money is never picked while another pays; when none pays the recommendation is None.
``runner_up`` is the next tier by net savings.  Growth scenarios (``g`` copies of the sessions
with fresh content, :mod:`simkv.economics.growth`) reuse the 1x run's billed window and bill
exactly the copies of the 1x billed requests, so ``g`` x traffic at the same hit rate gives
``g`` x the gross savings.
"""

from __future__ import annotations

from dataclasses import dataclass

from simkv.economics.context import BillContext
from simkv.economics.growth import GrownSource, check_factor, spacing_within
from simkv.economics.kinds.subscription import SubscriptionBook, Tier
from simkv.economics.pricebook import PLACEHOLDER_NOTE
from simkv.economics.requests import BillTrace
from simkv.economics.window import WarmupSpec, Window
from simkv.errors import InputError
from simkv.latency.slo import gpus_saved
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource
from simkv.units import format_bytes


def _gross(summary: dict) -> float:
    """Recompute dollars avoided per month (savings before the subscription price)."""
    return summary["no_cache_usd"] - summary["components_usd"].get("recompute_usd", 0.0)


def tier_row(ctx: BillContext, book: SubscriptionBook, tier: Tier, achievable: float) -> dict:
    """One tier's monthly figures on the context's (fixed) window; see the module docstring."""
    s = book.tier_bill(ctx, tier).summary()
    gross = _gross(s)
    denom = s["tokens_input"] * book.recompute_usd_per_mtok / 1e6
    per_day = gross / ctx.days_per_month
    return {"tier": tier.name, "capacity_bytes": tier.capacity, "usd_per_month": tier.usd_per_month,
            "hit_rate": s["hit_rate"], "gross_savings_usd": gross,
            "net_monthly_savings_usd": s["savings_usd"], "net_savings_usd": s["savings_usd"],
            "captured_share": (gross / achievable if achievable > 0
                               else (1.0 if tier.capacity == 0 else 0.0)),
            "break_even_prefix_hit_rate": tier.usd_per_month / denom if denom > 0 else None,
            "payback_days": tier.usd_per_month / per_day if per_day > 0 else None,
            "tokens_input": s["tokens_input"], "warmup_rule": s["warmup_rule"]}


#: A subscription bucket is one persistent store shared by every replica: hits load from the
#: latency model's remote tier, and requests are routed by load (affinity buys nothing there).
BUCKET_TIER, BUCKET_ROUTING = "remote", "least_loaded"


def _slo_check(ctx: BillContext, book: SubscriptionBook, tier: Tier, slo_s: float, gpu: str) -> dict:
    """The latency model's fleet check of one tier (fewest replicas meeting TTFT p90)."""
    cfg = (ctx.cache_config(capacity_bytes=tier.capacity, policy=book.policy)
           if tier.capacity > 0 else ctx.cache_config(capacity_blocks=0))
    res = gpus_saved(_Whole(whole=ctx.source), cfg, slo_s, model=None, gpu=gpu,
                     specs={ctx.spec.name: ctx.spec}, tier=BUCKET_TIER, routing=BUCKET_ROUTING)
    return {"meets_slo": bool(res.cached.meets), "ttft_p90_s": res.cached.ttft_quantile_s,
            "gpus_needed": res.cached.gpus, "gpus_needed_no_cache": res.baseline.gpus,
            "gpus_saved": res.gpus_saved}


@dataclass(frozen=True, eq=False)
class _Whole(TraceSource):
    """A bill's whole trace as a stream of its own chunks (models attached)."""

    whole: BillTrace | None = None

    def _raw_chunks(self, chunk_requests, columns, ids_as_keys):
        for _, chunk in self.whole.chunks():
            yield chunk


def evaluate_tiers(ctx: BillContext, book: SubscriptionBook, ttft_p90_slo_s: float | None = None,
                   gpu: str = "H100", window: Window | None = None, *,
                   keep_runs: bool = True) -> dict:
    """Every tier's figures on one window, the pick by net savings, and the runner-up.

    ``keep_runs=False`` drops each tier's cache run once its row is made (growth copies:
    no TTFT check asks for it again; ~50 bytes per request per run)."""
    if window is None:
        fills = [ctx.run(ctx.cache_config(capacity_bytes=t.capacity, policy=book.policy)).first_fill_s
                 for t in book.sorted_tiers() if t.capacity > 0]
        fills = [f for f in fills if f is not None]
        ctx.fixed_window = None
        window = ctx.window(None if not fills else _FillOnly(max(fills)))
    ctx.fixed_window = window
    unlimited = book.tier_bill(ctx, None).summary()
    achievable = _gross(unlimited)
    if not keep_runs:
        ctx.forget_runs()
    tiers = []
    for t in book.sorted_tiers():
        tiers.append(tier_row(ctx, book, t, achievable))
        if not keep_runs:
            ctx.forget_runs()
    by_net = sorted(range(len(tiers)), key=lambda i: (-tiers[i]["net_monthly_savings_usd"], i))
    choice = None
    for i in by_net:
        row = tiers[i]
        if row["net_monthly_savings_usd"] <= 0:
            break
        if ttft_p90_slo_s is not None:
            row["slo"] = _slo_check(ctx, book, book.sorted_tiers()[i], ttft_p90_slo_s, gpu)
            row["meets_slo"] = row["slo"]["meets_slo"]
            if not row["meets_slo"]:
                continue
        choice = row
        break
    ranked = [tiers[i] for i in by_net]
    runner = next((r for r in ranked if choice is not None and r is not choice), None)
    if choice is None and ranked:
        runner = ranked[0]
    return {"achievable_savings_usd": achievable, "unlimited_hit_rate": unlimited["hit_rate"],
            "tiers": tiers, "choice": choice, "runner_up": runner, "window": window,
            "warmup_rule": unlimited["warmup_rule"]}


class _FillOnly:
    """Stands in for a CacheRun where only the first-fill time matters."""

    def __init__(self, first_fill_s: float) -> None:
        self.first_fill_s = first_fill_s


def _growth_rows(ctx: BillContext, book: SubscriptionBook, growth: tuple[int, ...], kw: dict,
                 window: Window, lines: list[str]) -> list[dict]:
    rows = []
    boundary = window.start_s + window.warmup_s
    for g in growth:
        grown = GrownSource(base=ctx.source, factor=g,
                            spacing_s=spacing_within(ctx.source, boundary))
        gctx = BillContext(grown, None, **kw)
        gctx.activity = f"recommend {book.name} at {g}x traffic: "
        res = evaluate_tiers(gctx, book, window=window, keep_runs=False)
        c = res["choice"]
        rows.append({"factor": g, "recommended_tier": None if c is None else c["tier"],
                     "achievable_savings_usd": res["achievable_savings_usd"],
                     "unlimited_hit_rate": res["unlimited_hit_rate"],
                     "captured_share": {r["tier"]: r["captured_share"] for r in res["tiers"]},
                     "net_monthly_savings_usd": {r["tier"]: r["net_monthly_savings_usd"]
                                                 for r in res["tiers"]}})
        lines.append(f"At {g}x traffic ({g} copies of the sessions with fresh content, same "
                     f"billed window): " + (f"{c['tier']}, net ${c['net_monthly_savings_usd']:,.2f}"
                                            "/month." if c is not None else "no tier pays."))
    return rows


def _choice_lines(choice: dict | None, runner: dict | None, p: float) -> list[str]:
    if choice is None:
        best = "" if runner is None else (f" (best: {runner['tier']}, net "
                                          f"${runner['net_monthly_savings_usd']:,.2f}/month)")
        return [f"No tier saves more than it costs{best}: do not buy a tier at these prices."]
    lines = [f"Largest net savings: {choice['tier']} ({format_bytes(choice['capacity_bytes'])}, "
             f"${choice['usd_per_month']:,.2f}/month): net ${choice['net_monthly_savings_usd']:,.2f}"
             f"/month of ${choice['gross_savings_usd']:,.2f} recompute avoided at ${p:g}/MTok."]
    be, pb = choice["break_even_prefix_hit_rate"], choice["payback_days"]
    if be is not None:
        lines.append(f"It breaks even at a {be:.2%} prefix-token hit rate and reaches "
                     f"{choice['hit_rate']:.1%}" + ("" if pb is None else
                     f"; one month's fee is paid back by {pb:.1f} days of savings") + ".")
    if runner is not None:
        lines.append(f"Runner-up: {runner['tier']}, net ${runner['net_monthly_savings_usd']:,.2f}"
                     "/month.")
    return lines


def recommend(trace: Trace | TraceSource | BillTrace, model: str | None, book: SubscriptionBook, *,
              target_share: float = 0.95, growth: tuple[int, ...] = (2, 5),
              ttft_p90_slo_s: float | None = None, gpu: str = "H100",
              warmup: WarmupSpec | None = None, days_per_month: float = 30.0,
              reuse: str = "prefix", blend_recompute_share: float = 0.0,
              chunk_requests: int | None = None, progress=None) -> dict:
    """The recommendation as a dict with plain-language ``reasoning`` lines.

    ``target_share`` no longer drives the pick: it names the smallest tier capturing that share
    of the achievable savings (``smallest_tier_capturing_target``), for reference.
    ``trace``: in memory or a source read chunk by chunk (``chunk_requests`` per chunk; growth
    copies are streamed too, :class:`~simkv.economics.growth.GrownSource`).  ``progress``: as
    :class:`~simkv.economics.context.BillContext`'s.
    """
    if not 0.0 < target_share <= 1.0:
        raise InputError("must be within (0, 1]", where="--target-share")
    growth = tuple(growth)
    kw = dict(reuse=reuse, blend_recompute_share=blend_recompute_share, warmup=warmup,
              days_per_month=days_per_month, n_boot=0, keep_requests=False, progress=progress)
    for g in growth:
        check_factor(g)  # before any simulation
    bt = trace if isinstance(trace, BillTrace) else BillTrace(trace, model, chunk_requests)
    ctx = BillContext(bt, model, **kw)
    ctx.activity = f"recommend {book.name}: "
    base = evaluate_tiers(ctx, book, ttft_p90_slo_s, gpu)
    ctx.forget_runs()  # the 1x runs are not asked again (growth copies run their own)
    p = book.recompute_usd_per_mtok
    choice, runner = base["choice"], base["runner_up"]
    ach = base["achievable_savings_usd"]
    target = next((r["tier"] for r in base["tiers"] if r["captured_share"] >= target_share), None)
    lines = [f"An unlimited bucket ({book.policy}) would serve {base['unlimited_hit_rate']:.1%} "
             f"of input tokens from cache: ${ach:,.2f}/month of recompute avoided at ${p:g}/MTok "
             "(the achievable savings).",
             "Net monthly savings per tier (after its price): " + ", ".join(
                 f"{r['tier']} ({format_bytes(r['capacity_bytes'])}) "
                 f"${r['net_monthly_savings_usd']:,.2f}" for r in base["tiers"]) + ".",
             *_choice_lines(choice, runner, p)]
    out = {"model": ctx.spec.name, "pricebook": book.name, "policy": book.policy,
           "pricebook_status": book.status(), "target_share": target_share,
           "smallest_tier_capturing_target": target, "achievable_savings_usd": ach,
           "unlimited_hit_rate": base["unlimited_hit_rate"], "tiers": base["tiers"],
           "recommended_tier": None if choice is None else choice["tier"],
           "runner_up": None if runner is None else {
               "tier": runner["tier"], "net_monthly_savings_usd": runner["net_monthly_savings_usd"]},
           "warmup_rule": base["warmup_rule"], "placeholder": book.placeholder}
    for key in ("hit_rate", "net_monthly_savings_usd", "break_even_prefix_hit_rate", "payback_days"):
        out[key] = None if choice is None else choice[key]
    out["net_savings_usd"] = out["net_monthly_savings_usd"]
    out["break_even_hit_rate"] = out["break_even_prefix_hit_rate"]
    if ttft_p90_slo_s is not None:
        out["slo"] = {"ttft_p90_slo_s": ttft_p90_slo_s, **(choice or {}).get("slo", {})}
        if choice is not None and choice.get("slo"):
            s = choice["slo"]
            lines.append(f"TTFT p90 <= {ttft_p90_slo_s:g} s on {gpu}: {choice['tier']} needs "
                         f"{s['gpus_needed']} GPU(s) vs {s['gpus_needed_no_cache']} without a "
                         f"cache (GPUs saved: {s['gpus_saved']}).")
    out["growth"] = _growth_rows(ctx, book, growth, kw, base["window"], lines)
    out["growth_model"] = ("session copies with fresh block hashes, interleaved in time, billed "
                           "on the 1x window")
    lines.append(f"Warm-up: {base['warmup_rule']}; figures are per month of "
                 f"{days_per_month:g} days.")
    if book.placeholder:
        out["placeholder_note"] = PLACEHOLDER_NOTE
        lines.append(f"Tier sizes and prices are {PLACEHOLDER_NOTE}.")
    out["reasoning"] = lines
    return out


__all__ = ["recommend", "evaluate_tiers", "tier_row", "Tier"]
