"""``simkv cost case``, ``simkv cost pricebooks``, ``simkv compare``, ``simkv recommend``."""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path

import typer

from simkv import guard
from simkv.cache.config import DEFAULT_BLEND_RECOMPUTE_SHARE
from simkv.cli.common import print_json, print_table
from simkv.cli.progress import ChunkProgress
from simkv.errors import InputError
from simkv.units import format_bytes, parse_list

cost_app = typer.Typer(help="Recompute vs storage economics: the cost case and price books.",
                       no_args_is_help=True)


def _books(pricebooks: Path | None):
    from simkv.economics.pricebook import load_pricebooks

    return load_pricebooks(pricebooks)


@cost_app.command("case")
def case_cmd(
    prefix_tokens: int = typer.Option(..., "--prefix-tokens", help="Tokens of the shared prefix."),
    per_day: float = typer.Option(..., "--per-day", help="Times the prefix is encoded per day."),
    usd_per_mtok: float = typer.Option(..., "--usd-per-mtok", help="Input price, $ per million tokens."),
    days_per_month: float = typer.Option(30.0, "--days-per-month", help="Days in a billing month."),
    model: str = typer.Option("llama-3.1-8b", "--model", help="Model whose KV the prefix occupies."),
    pricebook: str = typer.Option("storage:object_store", "--pricebook",
                                  help="Book (name[:tier|medium] or a YAML path) pricing storage."),
    pricebooks: Path | None = typer.Option(None, "--pricebooks", help="Directory of price book YAMLs (default: shipped)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Monthly cost of re-encoding one prefix, its KV bytes, and what storing it costs."""
    from simkv.economics.case import cost_case
    from simkv.economics.pricebook import find_book
    from simkv.models.geometry import get_model

    spec = get_model(model)
    book, variant = find_book(_books(pricebooks), pricebook)
    out = cost_case(prefix_tokens, per_day, usd_per_mtok, days_per_month=days_per_month,
                    spec=spec, book=book, variant=variant)
    if json_out:
        print_json(out)
        return
    w = sys.stdout.write
    w(f"Monthly recompute: ${out['monthly_recompute_usd']:,.2f} ({prefix_tokens:,} tokens x "
      f"{per_day:,g}/day x {days_per_month:g} days at ${usd_per_mtok:g}/MTok)\n")
    w(f"KV of the prefix ({spec.name}): {format_bytes(out['kv_bytes'])} "
      f"({out['kv_bytes']:,.0f} bytes)\n")
    if out.get("monthly_store_and_read_usd") is None:
        w(f"Storage under {out['pricebook']}: {out['storage_basis']}\n")
    else:
        comps = " + ".join(f"{k.removesuffix('_usd')} ${v:,.2f}"
                           for k, v in out["store_and_read_components_usd"].items())
        w(f"Store and read under {out['pricebook']} ({out['pricebook_status']}): "
          f"${out['monthly_store_and_read_usd']:,.2f}/month = {comps}\n"
          f"  ({out['storage_basis']})\n")
        if out.get("read_load_s") is not None:
            w(f"Each read loads {format_bytes(out['kv_bytes'])} in {out['read_load_s']:.2f} s "
              "before prefill of the rest can start\n")
    if out.get("recompute_to_store_and_read_ratio") is not None:
        w(f"Recompute / (store and read): {out['recompute_to_store_and_read_ratio']:,.1f}x\n")
    if out.get("placeholder"):
        w(f"Note: {out['placeholder_note']}\n")


@cost_app.command("pricebooks")
def pricebooks_cmd(
    pricebooks: Path | None = typer.Option(None, "--pricebooks", help="Directory of price book YAMLs (default: shipped)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The loaded price books and the registered kinds."""
    from simkv.economics.pricebook import PRICEBOOK_KINDS

    books = _books(pricebooks)
    rows = [{"name": b.name, "kind": b.kind, "status": b.status(), "placeholder": b.placeholder,
             "source": b.source, "as_of": b.as_of,
             "figures": {k: f.model_dump() for k, f in b.figures}} for b in books]
    if json_out:
        print_json({"books": rows, "kinds": {k: PRICEBOOK_KINDS.get(k).summary
                                              for k in PRICEBOOK_KINDS.names()}})
        return
    print_table("price books", [(r["name"], f"{r['kind']}, {r['status'].upper()} - {r['as_of']}")
                                for r in rows])


def _common_trace(trace_path: Path, fmt: str | None, model: str | None):
    """The trace as a stream: bills hold per-request columns and read blocks chunk by chunk."""
    from simkv.economics.requests import BillTrace
    from simkv.trace.stream import TraceSource

    return BillTrace(TraceSource.of(trace_path, fmt), model)


def _fmt_usd(v) -> str:
    return "-" if v is None else f"${v:,.2f}"


@cost_app.callback()
def _cost_group() -> None:
    """Recompute vs storage economics."""


def compare_cmd(
    trace_path: Path = typer.Option(..., "--trace", help="Trace file."),
    fmt: str | None = typer.Option(None, "--format", help="Trace format (default: from suffix)."),
    model: str | None = typer.Option(None, "--model", help="Model for a trace that names none."),
    pricebooks: Path | None = typer.Option(None, "--pricebooks", help="Directory of price book YAMLs (default: shipped)."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated book names to bill."),
    reuse: str = typer.Option("prefix", "--reuse", help="prefix | chunk | both."),
    blend_share: float = typer.Option(DEFAULT_BLEND_RECOMPUTE_SHARE, "--blend-recompute-share", help="Share of chunk-hit tokens recomputed (chunk reuse)."),
    warmup: str = typer.Option("auto", "--warmup", help="auto | 10% | 300 | 5m | 0: part of the trace not billed."),
    days_per_month: float = typer.Option(30.0, "--days-per-month", help="Days in a billing month."),
    n_boot: int = typer.Option(200, "--bootstrap", help="Bootstrap resamples for the 95% intervals (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    fleet_sizing: str | None = typer.Option(
        None, "--fleet-sizing", help="Self-hosted fleets: busiest_hour (replicas for the busiest "
        "hour, all month) or per_hour (autoscaling); default: each book's own."),
    ttft_slo: float | None = typer.Option(
        None, "--ttft-slo-p90-s", help="TTFT p90 objective (s) self-hosted fleets are sized to "
        "(default: each book's, 2 s unless set)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list, one object per bill."),
    csv_out: bool = typer.Option(False, "--csv", help="Print CSV, one row per bill."),
) -> None:
    """Each price book's monthly bill on a trace, side by side."""
    from simkv.economics.compare import compare
    from simkv.economics.window import parse_warmup

    if json_out and csv_out:
        raise InputError("give --json or --csv, not both", where="--csv")
    modes = {"prefix": ("prefix",), "chunk": ("chunk",), "both": ("prefix", "chunk")}
    if reuse not in modes:
        raise InputError(f"unknown reuse mode {reuse!r} (valid: prefix, chunk, both)", where="--reuse")
    if not 0.0 <= blend_share <= 1.0:
        raise InputError("must be within [0, 1]", where="--blend-recompute-share")
    spec = parse_warmup(warmup)
    books = _books(pricebooks)
    if only:
        names = parse_list(only, lambda s, where: s, where="--only")
        known = {b.name for b in books}
        bad = [n for n in names if n not in known]
        if bad:
            raise InputError(f"unknown price book {bad[0]!r} (loaded: {', '.join(sorted(known))})",
                             where="--only")
        books = [b for b in books if b.name in names]
    books = _fleet_overrides(books, fleet_sizing, ttft_slo)
    trace = _common_trace(trace_path, fmt, model)
    n_req = trace.facts.n_requests
    # the bootstrap holds 4 sums per resample and, per unit (at most one per request), its
    # sums and one row of counts (Bill.bootstrap): no resamples x units matrix
    guard.check(32.0 * n_boot + 48.0 * n_req, f"--bootstrap {n_boot} over {n_req:,} requests")
    rows = compare(trace, model, books, reuse_modes=modes[reuse], blend_recompute_share=blend_share,
                   warmup=spec, days_per_month=days_per_month, n_boot=n_boot, seed=seed,
                   progress=ChunkProgress)
    if json_out:
        print_json(rows)
        return
    if csv_out:
        _write_csv(rows)
        return
    _print_compare(rows, trace_path.name, reuse == "both")


def _fleet_overrides(books: list, sizing: str | None, slo_s: float | None) -> list:
    """Self-hosted books with the command line's fleet sizing and TTFT objective."""
    import dataclasses

    from simkv.economics.fleet import SIZINGS
    from simkv.economics.kinds.self_hosted import SelfHostedBook

    if sizing is not None and sizing not in SIZINGS:
        raise InputError(f"unknown sizing {sizing!r} (valid: {', '.join(SIZINGS)})",
                         where="--fleet-sizing")
    if slo_s is not None and not slo_s > 0:
        raise InputError("must be > 0", where="--ttft-slo-p90-s")
    over = {k: v for k, v in (("sizing", sizing), ("ttft_slo_p90_s", slo_s)) if v is not None}
    return [dataclasses.replace(b, **over) if over and isinstance(b, SelfHostedBook) else b
            for b in books]


def _write_csv(rows: list[dict]) -> None:
    comps = sorted({k for r in rows for k in (r.get("components_usd") or {})})
    cols = ["provider", "kind", "reuse", "available", "hit_rate", "tokens_input", "tokens_hit",
            "tokens_written", "storage_token_hours", "storage_bytes", *comps, "total_usd",
            "no_cache_usd", "savings_usd", "total_usd_ci_lo", "total_usd_ci_hi", "warmup_s",
            "billed_window_s", "placeholder", "status", "replicas_with_cache",
            "replicas_without_cache"]
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(cols)
    for r in rows:
        ci = (r.get("ci95") or {}).get("total_usd") or [None, None]
        flat = {**r, **(r.get("components_usd") or {}), "total_usd_ci_lo": ci[0],
                "total_usd_ci_hi": ci[1]}
        wr.writerow(["" if flat.get(c) is None else flat.get(c) for c in cols])
    sys.stdout.write(buf.getvalue())


def _print_compare(rows: list[dict], trace_name: str, show_reuse: bool) -> None:
    from rich.table import Table

    from simkv.cli.common import console
    from simkv.economics.pricebook import PLACEHOLDER_NOTE

    table = Table(title=f"monthly bills on {trace_name}", show_header=True)
    for col in (["provider"] + (["reuse"] if show_reuse else []) +
                ["prices", "hit rate", "total", "95% CI", "no cache", "savings"]):
        table.add_column(col, justify="left" if col in ("provider", "reuse") else "right")
    for r in rows:
        reuse = [r.get("reuse", "")] if show_reuse else []
        if not r.get("available", True):
            table.add_row(r["provider"], *reuse, r.get("status", "-"), "-", "unavailable", "-",
                          "-", "-")
            continue
        ci = (r.get("ci95") or {}).get("total_usd")
        name = r["provider"] + (" *" if r.get("placeholder") else "")
        table.add_row(name, *reuse, r.get("status", "-"), f"{r['hit_rate']:.1%}",
                      _fmt_usd(r["total_usd"]),
                      "-" if not ci else f"{_fmt_usd(ci[0])}-{_fmt_usd(ci[1])}",
                      _fmt_usd(r["no_cache_usd"]), _fmt_usd(r["savings_usd"]))
    console.print(table)
    w = sys.stdout.write
    w("Per month:\n")
    for r in rows:
        if not r.get("available", True):
            w(f"  {r['provider']}: unavailable: {r['notes'][0]}\n")
            continue
        comps = " + ".join(f"{k.removesuffix('_usd')} {_fmt_usd(v)}"
                           for k, v in r["components_usd"].items())
        storage = ""
        if r["storage_token_hours"] is not None:
            storage = f", {r['storage_token_hours']:,.3g} token-hours stored"
        elif r["storage_bytes"] is not None:
            storage = f", {format_bytes(r['storage_bytes'])} stored"
        if r.get("replicas_with_cache") is not None:
            storage += (f"; {r['replicas_with_cache']:g} replica(s) with the cache vs "
                        f"{r['replicas_without_cache']:g} without ({r['sizing']}, TTFT p90 <= "
                        f"{r['ttft_slo_p90_s']:g} s)")
        tag = f" [{r['reuse']}]" if show_reuse else ""
        w(f"  {r['provider']}{tag}: {r['tokens_hit']:,.4g} tokens hit, {r['tokens_written']:,.4g} "
          f"written{storage}; {comps} = {_fmt_usd(r['total_usd'])}\n")
    avail = [r for r in rows if r.get("available", True)]
    if avail:
        w(f"Warm-up: {avail[0]['warmup_rule']} (per bill: a capacity-bound cache waits until it "
          f"first fills). Billed window {avail[0]['billed_window_s']:,.1f} s, scaled "
          f"x{avail[0]['month_factor']:,.1f} to a month.\n")
        if avail[0].get("ci_resampling"):
            w(f"95% intervals: {avail[0]['ci_resampling']} (cache outcomes held fixed).\n")
    if any(r.get("placeholder") for r in rows):
        w(f"* {PLACEHOLDER_NOTE}.\n")
    w("Prices: published = read on the provider's page; derived = a secondary page, a computed "
      "figure or a stated assumption; placeholder = no public price (see `simkv cost pricebooks "
      "--json` for each figure's URL and date).\n")
    w("Approximations: hits found at the trace's block size, then rounded to each provider's "
      "unit; see docs/economics.md.\n")


def recommend_cmd(
    trace_path: Path = typer.Option(..., "--trace", help="Trace file."),
    fmt: str | None = typer.Option(None, "--format", help="Trace format (default: from suffix)."),
    model: str | None = typer.Option(None, "--model", help="Model for a trace that names none."),
    tiers: Path | None = typer.Option(None, "--tiers", help="A subscription price book YAML (default: the shipped one)."),
    pricebooks: Path | None = typer.Option(None, "--pricebooks", help="Directory holding the subscription book (default: shipped)."),
    growth: str = typer.Option("2,5", "--growth", help="Traffic growth factors to re-check (whole numbers)."),
    target_share: float = typer.Option(0.95, "--target-share", help="Share of achievable savings the tier must capture."),
    ttft_slo: float | None = typer.Option(None, "--ttft-slo-p90-s", help="TTFT p90 objective in seconds (needs the latency model)."),
    gpu: str = typer.Option("H100", "--gpu", help="GPU for the TTFT check."),
    warmup: str = typer.Option("auto", "--warmup", help="auto | 10% | 300 | 5m | 0."),
    days_per_month: float = typer.Option(30.0, "--days-per-month", help="Days in a billing month."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The smallest subscription tier capturing most of the achievable savings, and why."""
    from simkv.economics.kinds.subscription import SubscriptionBook
    from simkv.economics.pricebook import load_pricebook
    from simkv.economics.recommend import recommend
    from simkv.economics.window import parse_warmup

    if ttft_slo is not None and not ttft_slo > 0:
        raise InputError("must be > 0", where="--ttft-slo-p90-s")
    factors = parse_list(growth, _parse_growth, where="--growth") if growth.strip() else []
    if tiers is not None:
        book = load_pricebook(tiers)
        src = tiers
    else:
        subs = [b for b in _books(pricebooks) if isinstance(b, SubscriptionBook)]
        if not subs:
            raise InputError("no subscription price book loaded; give --tiers FILE", where="--tiers")
        book, src = subs[0], "shipped subscription book"
    if not isinstance(book, SubscriptionBook):
        raise InputError(f"needs a subscription price book, got kind {book.kind!r}", source=src,
                         where="--tiers")
    trace = _common_trace(trace_path, fmt, model)
    req = trace.facts
    if factors:  # growth copies stream: about 4 x factor chunks of copies are held at once
        n = min(req.n_requests, trace.chunk_requests)
        guard.check(4 * max(factors) * guard.trace_bytes(
            n, req.n_block_accesses * n // max(req.n_requests, 1)),
            f"--growth {max(factors)} (copies of chunks of {n:,} requests)")
    # --ttft-slo-p90-s streams the trace through the latency model (no whole-trace load)
    out = recommend(trace, model, book, target_share=target_share, growth=tuple(factors),
                    ttft_p90_slo_s=ttft_slo, gpu=gpu, warmup=parse_warmup(warmup),
                    days_per_month=days_per_month, progress=ChunkProgress)
    if json_out:
        print_json(out)
        return
    sys.stdout.write("\n".join(out["reasoning"]) + "\n")


def _parse_growth(text: str, *, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"not a number: {text[:60]!r}", where=where) from None
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise InputError(f"growth factors must be whole numbers >= 1, got {text[:60]!r}",
                         where=where)
    return int(value)


def register(app: typer.Typer) -> None:
    app.add_typer(cost_app, name="cost")
    app.command("compare")(compare_cmd)
    app.command("recommend")(recommend_cmd)
