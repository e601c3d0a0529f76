"""Section 1: the brief's cost case, and what storing the same prefixes costs for a few models.

The recompute figures come from ``simkv cost case`` (simkv.economics); the KV bytes from the
model catalogue's geometry; storage prices from the price books' storage quotes: all tables of
the ``bills`` stage.
"""

from __future__ import annotations

import pandas as pd

from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import ReportContext, Section, Table

KEY = "cost-case"
TITLE = "The cost case: recomputing a shared prefix vs storing it"
#: the stages whose tables this section reads (its render-cache key covers their outputs)
READS = ('workloads', 'bills')


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, TITLE)
    days = ctx.options.days_per_month
    sec.intro = ("The product brief's two examples: a prefix re-encoded on every request costs its "
                 "input tokens again each time.  Storing its KV instead costs bytes, and reading "
                 "them back on every request costs per byte read (and time to load them).")
    sec.assumptions.append(f"A month is {days:g} days (the brief's convention; --days-per-month "
                           "in `simkv cost case`).")
    # 1. recompute cost of the two examples
    frame = ctx.run.table("bills", "cost_case_recompute")
    rows = frame.to_dict("records")
    if rows:
        data = ctx.write_data("cost_case_recompute", frame)
        sec.tables.append(Table(
            "Monthly recompute cost (the brief's examples)",
            ("case", "prefix tokens", "per day", "$ / MTok input", "monthly recompute"),
            tuple((r["case"], f"{r['prefix_tokens']:,}", f"{r['per_day']:,}",
                   f"{r['usd_per_mtok']:.2f}", fmt.usd(r["monthly_recompute_usd"])) for r in rows),
            data_file=data))
        for r in rows:
            sec.readings.append(
                f"{r['case']}: {r['prefix_tokens']:,} tokens x {r['per_day']:,} a day x {days:g} days "
                f"at ${r['usd_per_mtok']:.2f}/MTok = {fmt.usd(r['monthly_recompute_usd'])} a month "
                "spent re-encoding the same prefix.")
    # 2. KV bytes of the same prefixes for a few models (catalogue geometry)
    kv = ctx.run.table("bills", "cost_case_kv_bytes")
    storage_models = ctx.run.facts("bills")["storage_models"]
    kv_file = ctx.write_data("cost_case_kv_bytes", kv)
    with new_figure() as (fig, ax):
        piv = kv.pivot(index="model", columns="prefix_tokens", values="kv_bytes").loc[list(storage_models)]
        xs = range(len(piv))
        width = 0.38
        for j, col in enumerate(piv.columns):
            ax.bar([x + (j - 0.5) * width for x in xs], piv[col] / 2**30, width,
                   label=f"{col:,}-token prefix")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(piv.index, fontsize=8)
        ax.set_ylabel("KV cache (GiB, one copy)")
        ax.legend(fontsize=7)
        sec.figures.append(ctx.figure(
            KEY, fig, title="KV bytes of the brief's prefixes, by model",
            caption=("Bytes of KV one stored copy of each prefix occupies (bf16 KV, no tensor "
                     "parallelism; MLA and sliding-window layers counted as the engine stores them)."),
            data_file=kv_file, basis="modelled"))
    small = kv.loc[kv["kv_bytes"].idxmin()]
    big = kv.loc[kv["kv_bytes"].idxmax()]
    sec.readings.append(
        f"The same prefix costs very different bytes by model: from {fmt.size(small['kv_bytes'])} "
        f"({small['model']}, {small['prefix_tokens']:,} tokens) to {fmt.size(big['kv_bytes'])} "
        f"({big['model']}, {big['prefix_tokens']:,} tokens).")
    if rows:
        sec.headline = ("Re-encoding the brief's prefixes costs "
                        + " and ".join(fmt.usd(r["monthly_recompute_usd"]) for r in rows)
                        + " a month; their KV is " + fmt.size(small["kv_bytes"]) + " to "
                        + fmt.size(big["kv_bytes"]) + " depending on the model.")
    if ctx.run.has_table("bills", "cost_case_storage_quotes"):
        _quotes(ctx, sec, rows, storage_models[0])
    return sec


def _quotes(ctx: ReportContext, sec: Section, rows: list[dict], first_model: str) -> None:
    """The cheapest way to store each prefix and read it back, against recomputing it."""
    q = ctx.run.table("bills", "cost_case_storage_quotes")
    q_file = ctx.write_data("cost_case_storage_quotes", q)
    rec = {r["prefix_tokens"]: r["monthly_recompute_usd"] for r in rows}
    cheapest = q.sort_values(["monthly_store_and_read_usd", "book", "variant", "model"]).groupby(
        ["model", "prefix_tokens"], sort=False).head(1)
    sec.tables.append(Table(
        "Cheapest way to store each prefix and read it back on every request, for a month",
        ("model", "prefix tokens", "KV", "cheapest book", "prices", "monthly store and read")
        + (("recompute / (store and read)",) if rows else ()),
        tuple((r.model, f"{r.prefix_tokens:,}", fmt.size(r.kv_bytes), f"{r.book}:{r.variant}",
               r.status, fmt.usd(r.monthly_store_and_read_usd))
              + ((f"{r.recompute_over_store_and_read:,.1f}x",) if rows else ())
              for r in cheapest.sort_values(["prefix_tokens", "model"]).itertuples()),
        data_file=q_file))
    if any(q["placeholder"]) and "placeholder" in set(cheapest["status"]):
        sec.assumptions.append("The cheapest store-and-read option for some prefixes rests on "
                               "a PLACEHOLDER price (see the prices column).")
    if any(q["placeholder"]):
        sec.assumptions.append("Some storage prices are PLACEHOLDER figures (not published "
                               "prices); replace them in a price book YAML (--pricebooks).")
    if rows:
        sec.readings += _store_and_read_readings(q, cheapest, rec, first_model)


def _store_and_read_readings(q: pd.DataFrame, cheapest: pd.DataFrame, rec: dict,
                             first_model: str) -> list[str]:
    """Recompute vs store-and-read per prefix, and storage alone vs store-and-read."""
    out = []
    for pt in sorted(q["prefix_tokens"].unique()):
        sub = cheapest[cheapest["prefix_tokens"] == pt]
        worst = sub.loc[sub["monthly_store_and_read_usd"].idxmax()]
        obj = q[(q["prefix_tokens"] == pt) & (q["variant"] == "object_store")
                & (q["model"] == first_model)]
        out.append(
            f"For the {pt:,}-token prefix, recomputing costs {fmt.usd(rec[pt])} a month; "
            f"storing it and reading it back on every request costs, for the largest model "
            f"({worst['model']}), {fmt.usd(worst['monthly_store_and_read_usd'])} a month at the "
            f"cheapest book ({worst['book']}:{worst['variant']}, {worst['status']} prices)"
            + ("" if obj.empty else
               f"; in an object store ({first_model}) storage alone is "
               f"{fmt.usd(obj['monthly_storage_usd'].iloc[0])} but store-and-read "
               f"{fmt.usd(obj['monthly_store_and_read_usd'].iloc[0])}, the retrieval fee on "
               "every byte read dominating") + ".")
    return out
