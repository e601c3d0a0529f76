"""Stage ``bills``: every price book's monthly bill on each workload (``simkv compare``'s
machinery), with chunk reuse where the trace allows it, and the brief's cost case: recompute
dollars, KV bytes by model and storage quotes (report sections 1 and 2).  Reads price books."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage
from simkv.pipeline.stages.common import blend_recompute_share
from simkv.pipeline.workload import WorkloadInput

if TYPE_CHECKING:
    from simkv.trace.stream import TraceSource

#: The two examples of the product brief (docs/facts.md).
BRIEF_CASES = (
    {"case": "32k-token system prefix, 2,000 requests a day", "prefix_tokens": 32_000,
     "per_day": 2_000, "usd_per_mtok": 0.15},
    {"case": "support assistant: 24k-token shared prefix, 150,000 sessions a day",
     "prefix_tokens": 24_000, "per_day": 150_000, "usd_per_mtok": 0.15},
)

#: Models whose KV bytes for the same prefixes are shown (dense GQA, MLA, MoE, sliding window).
STORAGE_MODELS = ("llama-3.1-8b", "llama-3.1-70b", "qwen3-32b", "deepseek-v3", "gpt-oss-120b")


def per_model(w: WorkloadInput) -> list[tuple[str, TraceSource]]:
    """(model, trace stream) pairs: bills need one model per trace, so a model mix is split
    (each model's requests streamed, :mod:`simkv.trace.by_model`; a model needs two or more
    requests).  The bills, recommend and explorer stages all split here."""
    from simkv.trace.by_model import split_models

    models = w.head.models
    if len(set(models)) <= 1:
        return [(w.model, w.chunks)]
    return list(split_models(w.chunks, models))


def _bill_row(w: WorkloadInput, model: str, reuse: str, s: dict) -> dict:
    ci = s.get("ci95") or {}
    return {
        "workload": w.name, "model": model, "reuse": reuse,
        "provider": s["provider"], "kind": s["kind"],
        "available": bool(s.get("available", True)),
        "hit_rate": s.get("hit_rate"), "total_usd": s.get("total_usd"),
        "no_cache_usd": s.get("no_cache_usd"), "savings_usd": s.get("savings_usd"),
        "savings_share": s.get("savings_share"),
        "total_usd_ci_lo": (ci.get("total_usd") or [None, None])[0],
        "total_usd_ci_hi": (ci.get("total_usd") or [None, None])[1],
        "hit_rate_ci_lo": (ci.get("hit_rate") or [None, None])[0],
        "hit_rate_ci_hi": (ci.get("hit_rate") or [None, None])[1],
        "warmup_rule": s.get("warmup_rule"), "month_factor": s.get("month_factor"),
        "placeholder": bool(s.get("placeholder", False)),
        "status": s.get("status"),
        "components": "; ".join(f"{k}={v:.4f}" for k, v in
                                sorted((s.get("components_usd") or {}).items())),
        "notes": " | ".join(s.get("notes") or []),
    }


def bill_rows(ctx: StageContext, books: list, w: WorkloadInput, reuse: str = "prefix") -> list[dict]:
    """One row per (model, book variant) with monthly dollars and 95% intervals."""
    from simkv.economics.compare import compare

    opts = ctx.options
    return [_bill_row(w, model, reuse, s) for model, trace in per_model(w)
            for s in compare(trace, None, books, reuse_modes=(reuse,),
                             blend_recompute_share=blend_recompute_share(),
                             days_per_month=opts.days_per_month, n_boot=opts.n_boot, seed=opts.seed)]


def _cost_case(books: list, days: float) -> dict[str, pd.DataFrame]:
    from simkv.economics.case import cost_case
    from simkv.models import get_model

    rows = [{**case, "days_per_month": days, "monthly_recompute_usd": float(cost_case(
        case["prefix_tokens"], case["per_day"], case["usd_per_mtok"], days_per_month=days,
        spec=get_model(STORAGE_MODELS[0]))["monthly_recompute_usd"])} for case in BRIEF_CASES]
    kv_rows = []
    for name in STORAGE_MODELS:
        spec = get_model(name)
        for case in BRIEF_CASES:
            kv_rows.append({"model": name, "prefix_tokens": case["prefix_tokens"],
                            "kv_bytes": float(spec.kv_bytes(case["prefix_tokens"])),
                            "kv_bytes_per_token": float(spec.kv_bytes_per_token)})
    quotes = _store_and_read_quotes(books, kv_rows, days)
    out = {"cost_case_recompute": pd.DataFrame(rows), "cost_case_kv_bytes": pd.DataFrame(kv_rows)}
    if quotes:
        q = pd.DataFrame(quotes)
        rec = {r["prefix_tokens"]: r["monthly_recompute_usd"] for r in rows}
        q["monthly_recompute_usd"] = q["prefix_tokens"].map(rec)
        q["recompute_over_store_and_read"] = (
            q["monthly_recompute_usd"]
            / q["monthly_store_and_read_usd"].where(q["monthly_store_and_read_usd"] > 0))
        out["cost_case_storage_quotes"] = q
    return out


def _store_and_read_quotes(books: list, kv_rows: list[dict], days: float) -> list[dict]:
    """Each book's store-and-read quote per (model, prefix): every request of the brief's case
    reads the prefix's KV back, so reads are billed at the case's request rate."""
    per_day = {c["prefix_tokens"]: c["per_day"] for c in BRIEF_CASES}
    quotes = []
    for r in kv_rows:
        for book in books:
            for q in book.storage_quotes(r["prefix_tokens"], r["kv_bytes"], days,
                                         reads_per_month=per_day[r["prefix_tokens"]] * days):
                quotes.append({"model": r["model"], "prefix_tokens": r["prefix_tokens"],
                               "kv_bytes": r["kv_bytes"], "book": q.book, "variant": q.variant,
                               "monthly_storage_usd": dict(q.components_usd).get("storage_usd"),
                               "monthly_store_and_read_usd": float(q.monthly_usd),
                               "basis": q.basis, "load_s": q.load_s, "status": q.status,
                               "placeholder": bool(q.placeholder)})
    return quotes


def run(ctx: StageContext) -> StageOutput:
    from simkv.economics.pricebook import load_pricebooks
    from simkv.economics.window import WarmupSpec

    books = load_pricebooks(ctx.options.pricebooks_dir)
    tables = _cost_case(books, ctx.options.days_per_month)
    workloads = ctx.workloads()
    rows = [r for w in workloads for r in bill_rows(ctx, books, w)]
    if rows:
        tables["bills"] = pd.DataFrame(rows)
    chunk = [r for w in workloads if w.head.content_hashes is not None
             for r in bill_rows(ctx, books, w, "chunk")]
    if chunk:
        tables["bills_chunk"] = pd.DataFrame(chunk)
    tables["pricebooks"] = pd.DataFrame(
        [{"name": b.name, "kind": b.kind, "as_of": b.as_of, "source": b.source,
          "placeholder": bool(b.placeholder)} for b in books],
        columns=["name", "kind", "as_of", "source", "placeholder"])
    facts = {"warmup": WarmupSpec().describe(), "storage_models": list(STORAGE_MODELS)}
    return StageOutput(tables=tables, facts=facts)


register_stage(Stage("bills", "provider comparison", run, needs=("workloads",),
                     reads=("pricebooks",), options=("days_per_month", "n_boot", "seed")))
