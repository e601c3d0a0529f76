"""Stage ``explorer``: the tables behind the decision cards and the in-page explorer (the exact
LRU grid at 1x/2x/5x traffic with every tier's capacity, monthly token volumes, TTFT at replicas
sized to the TTFT objective).  Reads the price books or ``--tiers``; docs/report.md."""

from __future__ import annotations

from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage


def _books(ctx: StageContext) -> list:
    from simkv.economics.kinds.subscription import SubscriptionBook
    from simkv.economics.pricebook import load_pricebook, load_pricebooks
    from simkv.errors import InputError

    if ctx.options.tiers_path is not None:
        book = load_pricebook(ctx.options.tiers_path)
        if not isinstance(book, SubscriptionBook):
            raise InputError(f"needs a subscription price book, got kind {book.kind!r}",
                             source=ctx.options.tiers_path, where="--tiers")
        return [book]
    return [b for b in load_pricebooks(ctx.options.pricebooks_dir) if isinstance(b, SubscriptionBook)]


def _pairs(ctx: StageContext) -> list:
    """(workload, model, single-model trace stream): a model mix is split as the bills split
    it (:func:`simkv.pipeline.stages.bills.per_model`)."""
    from simkv.pipeline.stages.bills import per_model

    return [(w.name, model, source) for w in ctx.workloads() for model, source in per_model(w)]


def run(ctx: StageContext) -> StageOutput:
    from simkv.report.explorer.money import TierPrice
    from simkv.report.explorer.replicas import report_slo_s
    from simkv.report.explorer.tables import catalogue_block_bytes, explorer_tables

    books = _books(ctx)
    if not books:
        return StageOutput(facts={"missing": "decision cards: no subscription price book "
                                             "(give --tiers FILE)"})
    pairs = _pairs(ctx)
    if not pairs:
        return StageOutput(facts={"missing": "decision cards: no workload has two or more "
                                             "requests of one model"})
    slo = report_slo_s(ctx.options)
    book_dicts = [{"name": b.name, "recompute_usd_per_mtok": float(b.recompute_usd_per_mtok),
                   "placeholder": bool(b.placeholder), "source": b.source, "as_of": b.as_of,
                   "tiers": [{"name": t.name, "capacity_bytes": float(t.capacity),
                              "usd_per_month": float(t.usd_per_month)} for t in b.sorted_tiers()]}
                  for b in books]
    tiers = [TierPrice(**t) for t in book_dicts[0]["tiers"]]
    t = explorer_tables(pairs, tiers, quick=ctx.options.quick,
                        days_per_month=ctx.options.days_per_month, slo_p90_s=slo)
    blocks = sorted({int(b) for b in t.volume["block_tokens"]})
    return StageOutput(tables={"grid": t.grid, "volume": t.volume, "ttft": t.ttft},
                       facts={"books": book_dicts, "slo_p90_s": slo,
                              "model_block_bytes": {str(b): catalogue_block_bytes(b) for b in blocks}})


register_stage(Stage("explorer", "decision cards and explorer", run, needs=("workloads",),
                     reads=("pricebooks", "tiers"),
                     options=("quick", "days_per_month", "ttft_slo_p90_s")))
