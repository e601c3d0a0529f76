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

from simkv.atomicio import atomic_write_text
from simkv.report import fmt
from simkv.report.explorer.card import build_card, headline, ttft_sentence
from simkv.report.explorer.frames import ExplorerTables
from simkv.report.explorer.money import TierPrice
from simkv.report.explorer.payload import build_payload, decision_json, script_json
from simkv.report.model import ReportContext, Section

#: as in simkv.latency.slo (not imported: the report imports no simulator)
DEFAULT_TTFT_SLO_P90_S = 2.0
#: HBM prefix cache per replica, as in simkv.report.explorer.tables
HBM_SHARE = 0.05

KEY = "decision"
TITLE = "What to buy, and what it saves"
#: the stages whose tables the section reads (the render cache keys on their outputs)
READS = ("explorer", "bills")
DECISION_FILE = "data/decision.json"


@dataclass
class DecisionSection(Section):
    """A section that also carries the cards and the explorer payload (JSON text)."""

    cards: list[dict] = field(default_factory=list)
    measured: list[dict] = field(default_factory=list)
    payload_json: str = ""
    slo_p90_s: float = DEFAULT_TTFT_SLO_P90_S


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
    """The cards and the payload from the ``explorer`` stage's tables (and the bills')."""
    sec = DecisionSection(KEY, "What to buy, and what it saves")
    facts = ctx.run.facts("explorer") if ctx.run.has("explorer") else {}
    if not facts.get("books"):
        sec.status = "unavailable"
        sec.mark_missing(facts.get("missing") or "decision cards: the explorer stage did not run")
        return sec
    slo = float(facts["slo_p90_s"])
    sec.slo_p90_s = slo
    sec.intro = ("One card per workload: the bucket tier with the largest net monthly savings "
                 "after its price, its break-even hit rate, and TTFT before and after at the "
                 f"fewest replicas meeting TTFT p90 <= {slo:g} s.")
    tables = ExplorerTables(*(ctx.run.table("explorer", n) for n in ("grid", "volume", "ttft")))
    books = facts["books"]
    book = books[0]
    tiers = [TierPrice(**t) for t in book["tiers"]]
    grid_file = ctx.write_data("explorer_grid", tables.grid)
    ctx.write_data("explorer_volume", tables.volume)
    ctx.write_data("explorer_ttft", tables.ttft)
    cards = [build_card(tables, w, m, book=book["name"], tiers=tiers,
                        usd_per_mtok=float(book["recompute_usd_per_mtok"]),
                        placeholder=bool(book["placeholder"]))
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
    bills = ctx.run.table("bills", "bills") if ctx.run.has_table("bills", "bills") else None
    blocks = {int(k): v for k, v in (facts.get("model_block_bytes") or {}).items()}
    payload = build_payload(tables, books, cards, days_per_month=ctx.options.days_per_month,
                            slo_p90_s=slo, bills=bills, measured=sec.measured,
                            model_block_bytes=blocks)
    sec.payload_json = script_json(payload)
    sec.headline = headline(cards)
    _assumptions(sec, grid_file, str(tables.ttft["gpu"].iloc[0]), book)
    return sec


def _assumptions(sec: DecisionSection, grid_file: str, gpu: str, book: dict) -> None:
    sec.assumptions += [
        f"Bucket hit rates are the exact LRU grid ({grid_file}) over the whole window, warm-up "
        "included, extrapolated linearly to a month; the provider-bills section discards a warm-up "
        "first, so its dollars can differ slightly.",
        f"TTFT: analytic latency model (not calibrated here) on {gpu}; the bucket sits on the "
        f"remote tier behind an HBM prefix cache of {fmt.pct(HBM_SHARE, 0)} of the workload's "
        "working set per replica; requests are routed by prefix with the cache and by load "
        "without it, as the self-hosted fleets are.",
        "Traffic 2x and 5x are copies of the sessions with fresh content (simkv.economics.growth).",
        "The cards compare each bucket tier with no cache at the book's input price, from the "
        "whole-window grid; the tier section (simkv recommend) bills after a warm-up, so its net "
        "savings can differ slightly, and the provider-bills section compares other ways to buy "
        "the reuse (API caches, storage, self-hosted fleets) at their own prices.",
    ]
    if book["placeholder"]:
        sec.assumptions.append(f"The tier sizes and prices of the {book['name']!r} price book are "
                               "PLACEHOLDERS, not published prices: the cards' dollars rest on "
                               "them (give yours with --tiers FILE).")
