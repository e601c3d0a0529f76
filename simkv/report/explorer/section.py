"""The decision section: the cards at the top of the report and the explorer's embedded data.

Wiring only: it gathers the report's workloads and subscription book, has
:mod:`simkv.report.explorer.tables` compute the tables, writes them under ``data/`` (CSV, plus
``data/decision.json``), and returns a :class:`DecisionSection` that the templates render first
(cards) and again at the explorer panel (the payload).  When the report's computations move into
pipeline stages, only this module changes: the cards and the payload read plain tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simkv.atomicio import atomic_write_text
from simkv.economics.kinds.subscription import SubscriptionBook
from simkv.economics.pricebook import load_pricebook, load_pricebooks
from simkv.errors import InputError
from simkv.latency.slo import DEFAULT_TTFT_SLO_P90_S
from simkv.report import fmt
from simkv.report.explorer.card import build_card, headline, ttft_sentence
from simkv.report.explorer.money import TierPrice
from simkv.report.explorer.payload import build_payload, decision_json, script_json
from simkv.report.explorer.replicas import report_slo_s
from simkv.report.explorer.tables import HBM_SHARE, explorer_tables
from simkv.report.model import ReportContext, Section
from simkv.trace.model import Trace

KEY = "decision"
DECISION_FILE = "data/decision.json"


@dataclass
class DecisionSection(Section):
    """A section that also carries the cards and the explorer payload (JSON text)."""

    cards: list[dict] = field(default_factory=list)
    measured: list[dict] = field(default_factory=list)
    payload_json: str = ""
    slo_p90_s: float = DEFAULT_TTFT_SLO_P90_S


def subscription_books(ctx: ReportContext) -> list[SubscriptionBook]:
    """--tiers FILE, else every subscription book among the run's price books."""
    if ctx.options.tiers_path is not None:
        book = load_pricebook(ctx.options.tiers_path)
        if not isinstance(book, SubscriptionBook):
            raise InputError(f"needs a subscription price book, got kind {book.kind!r}",
                             source=ctx.options.tiers_path, where="--tiers")
        return [book]
    if "books" not in ctx.cache:
        ctx.cache["books"] = load_pricebooks(ctx.options.pricebooks_dir)
    return [b for b in ctx.cache["books"] if isinstance(b, SubscriptionBook)]


def pairs(ctx: ReportContext) -> list[tuple[str, str, Trace]]:
    """(workload, model, single-model trace): a model mix is split, as the bills split it."""
    out = []
    for w in ctx.workloads:
        tr = w.trace
        if len(set(tr.models)) <= 1:
            out.append((w.name, w.model, tr))
            continue
        for k, name in enumerate(tr.models):
            rows = np.flatnonzero(tr.model_index == k)
            if len(rows) >= 2:
                out.append((w.name, name, tr.select(rows).with_model(name)))
    return out


def tier_prices(book: SubscriptionBook) -> list[TierPrice]:
    return [TierPrice(t.name, float(t.capacity), float(t.usd_per_month)) for t in book.sorted_tiers()]


def book_dict(book: SubscriptionBook) -> dict:
    return {"name": book.name, "recompute_usd_per_mtok": float(book.recompute_usd_per_mtok),
            "placeholder": bool(book.placeholder), "source": book.source, "as_of": book.as_of,
            "tiers": [{"name": t.name, "capacity_bytes": t.capacity_bytes,
                       "usd_per_month": t.usd_per_month} for t in tier_prices(book)]}


#: what the cards quote from an engine replay (``simkv-harness validate --json``)
MEASURED_FIELDS = ("predicted_prefix_hit_ratio", "measured_prefix_hit_ratio",
                   "predicted_ttft_p50_s", "measured_ttft_p50_s")


def measured_checks(ctx: ReportContext) -> list[dict]:
    """The engine replays given to the report, as checks of the model (basis ``measured``).

    The replay is its own small workload on a tiny CPU model, not the cards' workloads: it tells
    the reader how far simkv's hit-rate and TTFT modelling was from a real engine, no more.  A
    malformed file is the TTFT section's to report; here it is skipped.
    """
    path = ctx.options.measured_path
    if path is None or not Path(path).is_file():
        return []
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    out = []
    for item in obj if isinstance(obj, list) else [obj]:
        if isinstance(item, dict) and all(isinstance(item.get(k), int | float) for k in MEASURED_FIELDS):
            out.append({"label": str(item.get("label", item.get("trace", "replay"))),
                        "basis": "measured", "source": Path(path).name,
                        **{k: float(item[k]) for k in MEASURED_FIELDS}})
    return out


def _readings(sec: DecisionSection, cards: list[dict]) -> None:
    for c in cards:
        text = c["answer"]
        tt = ttft_sentence(c)
        if tt:
            text += " " + tt
        if c.get("sensitivity"):
            text += " " + c["sensitivity"]["sentence"]
        sec.readings.append(text)


def build(ctx: ReportContext) -> DecisionSection:
    slo = report_slo_s(ctx.options)
    sec = DecisionSection(KEY, "What to buy, and what it saves", slo_p90_s=slo)
    sec.intro = ("One card per workload: the bucket tier with the largest net monthly savings "
                 "after its price, its break-even hit rate, and TTFT before and after at the "
                 f"fewest replicas meeting TTFT p90 <= {slo:g} s.")
    books = subscription_books(ctx)
    if not books:
        sec.status = "unavailable"
        sec.mark_missing("decision cards: no subscription price book (give --tiers FILE)")
        return sec
    book = books[0]
    studied = pairs(ctx)
    if not studied:
        sec.status = "unavailable"
        sec.mark_missing("decision cards: no workload has two or more requests of one model")
        return sec
    tables = explorer_tables(studied, tier_prices(book), quick=ctx.options.quick,
                             days_per_month=ctx.options.days_per_month, slo_p90_s=slo)
    grid_file = ctx.write_data("explorer_grid", tables.grid)
    ctx.write_data("explorer_volume", tables.volume)
    ctx.write_data("explorer_ttft", tables.ttft)
    cards = [build_card(tables, w, m, book=book.name, tiers=tier_prices(book),
                        usd_per_mtok=float(book.recompute_usd_per_mtok),
                        placeholder=bool(book.placeholder))
             for w, m in dict.fromkeys(zip(tables.volume["workload"], tables.volume["model"],
                                           strict=True))]
    sec.cards = cards
    _readings(sec, cards)
    sec.measured = measured_checks(ctx)
    decision = decision_json(cards, slo_p90_s=slo,
                             days_per_month=ctx.options.days_per_month, measured=sec.measured)
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(ctx.out_dir / DECISION_FILE,
                      json.dumps(decision, indent=1, sort_keys=True, allow_nan=False) + "\n")
    ctx.data_files.append(DECISION_FILE)
    payload = build_payload(tables, [book_dict(b) for b in books], cards,
                            days_per_month=ctx.options.days_per_month,
                            slo_p90_s=slo, bills=ctx.cache.get("bills"),
                            measured=sec.measured)
    sec.payload_json = script_json(payload)
    sec.headline = headline(cards)
    sec.assumptions += [
        f"Bucket hit rates are the exact LRU grid ({grid_file}) over the whole window, warm-up "
        "included, extrapolated linearly to a month; the provider-bills section discards a warm-up "
        "first, so its dollars can differ slightly.",
        f"TTFT: analytic latency model (not calibrated here) on {tables.ttft['gpu'].iloc[0]}; the "
        f"bucket sits on the remote tier behind an HBM prefix cache of {fmt.pct(HBM_SHARE, 0)} of "
        "the workload's working set per replica; requests are routed by prefix with the cache "
        "and by load without it, as the self-hosted fleets are.",
        "Traffic 2x and 5x are copies of the sessions with fresh content (simkv.economics.growth).",
        "The cards compare each bucket tier with no cache at the book's input price, from the "
        "whole-window grid; the tier section (simkv recommend) bills after a warm-up, so its net "
        "savings can differ slightly, and the provider-bills section compares other ways to buy "
        "the reuse (API caches, storage, self-hosted fleets) at their own prices.",
    ]
    if book.placeholder:
        sec.assumptions.append(f"The tier sizes and prices of the {book.name!r} price book are "
                               "PLACEHOLDERS, not published prices: the cards' dollars rest on "
                               "them (give yours with --tiers FILE).")
    return sec
