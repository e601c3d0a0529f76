"""Replay a trace on endpoints and measure: records, counter deltas, server histograms, load.

:func:`replay_and_measure` is the one entry point ``replay`` and ``validate`` share (and the
report's measured stage): it plans the requests (:mod:`harness.plan`), refuses a run that
would skip more than ``max_skip_share`` of them unless allowed, warms and resets the caches,
scrapes every endpoint (and LMCache server) before and after, replays
(:mod:`harness.replay`) while :class:`harness.scraper.DuringScraper` samples, and records the
machine's load (:mod:`harness.machine`).  It writes ``records.jsonl`` / ``records.parquet`` /
``metrics.jsonl`` into ``out``; everything else is returned in a frozen :class:`Measurement`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from harness import client
from harness.machine import LoadMeter, MachineLoad
from harness.metrics import (
    LMCACHE_REQUIRED,
    VLLM_CONNECTOR_REQUIRED,
    VLLM_REQUIRED,
    Snapshot,
    cache_deltas,
    histogram_deltas,
    lmcache_deltas,
)
from harness.netio import check_url
from harness.plan import PlannedRequest, PlanOptions, build_plan
from harness.replay import ClientOptions, ServerDied, read_records, replay_async, summarize
from harness.scraper import DuringScraper, key_samples
from harness.ticks import TickWatcher
from simkv.atomicio import atomic_writer
from simkv.errors import InputError
from simkv.trace import load_trace
from simkv.trace.model import Trace

#: more skipped requests than this share fails the run unless ``allow_skip``
MAX_SKIP_SHARE = 0.05


def client_trip_mean_s(records: list[dict], histograms: dict[str, dict]) -> float | None:
    """The client's mean TTFT minus the engine's (vLLM's TTFT histogram: its sum over its count
    is the exact mean of what the server timed), over one endpoint's replay: the trips in and
    out through the HTTP front end and the client, which the engine's own time leaves out.
    ``None`` with several endpoints or without the histogram."""
    if len(histograms) != 1:
        return None
    server = next(iter(histograms.values())).get("time_to_first_token_seconds", {}).get("mean_s")
    ttft = [r["ttft_s"] for r in records if r.get("status") == "ok" and r.get("ttft_s") is not None]
    if server is None or not ttft:
        return None
    return float(sum(ttft) / len(ttft) - server)


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: pacing, limits, prompts, client and output folder."""

    endpoints: tuple[str, ...]
    out: Path
    time_scale: float = 1.0
    concurrency: int | None = None
    max_requests: int | None = None
    max_tokens: int | None = None
    output_scale: float = 1.0
    routing: str = "round_robin"
    resume: bool = False
    force: bool = False
    vocab: int = 4096
    salt: int = 0
    warmup: bool = True
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 600.0
    lmcache_metrics: tuple[str, ...] = ()
    require_metrics: bool = False
    allow_skip: bool = False


@dataclass(frozen=True)
class Measurement:
    """What one replay measured (records as dicts, counters as deltas over the replay)."""

    trace: Trace
    plan: list[PlannedRequest]
    records: list[dict]
    summary: dict
    deltas: dict[str, dict]
    histograms: dict[str, dict]
    lmcache: dict[str, dict]
    after: dict[str, Snapshot]
    load: MachineLoad | None
    l1_wakes: dict[str, tuple[float, ...]] = field(default_factory=dict)  # url: loop wakes (s)
    #: the replay clock's zero and the replay's end in wall time (``time.time()``): ties the
    #: replay to a server's own log (:mod:`harness.lmcachelog`)
    t0_wall_s: float | None = None
    end_wall_s: float | None = None

    @property
    def df(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)


def check_out(out: Path, resume: bool, force: bool) -> Path:
    """Refuse a bad --out before any work; touches nothing (see :func:`prepare_out`)."""
    rec = out / "records.jsonl"
    try:
        exists = rec.exists()
        if out.exists() and not out.is_dir():
            raise InputError("exists and is not a directory", source=out, where="--out")
    except OSError as exc:  # a name too long, a path through a file, ...
        raise InputError(f"cannot use this folder ({exc.strerror or exc})", where="--out") from None
    if exists and not (resume or force):
        raise InputError("holds records of an earlier run; give --resume to continue it or "
                         "--force to start over", source=out, where="--out")
    return out


def prepare_out(out: Path, resume: bool, force: bool) -> Path:
    """Create --out and, with --force, drop earlier records: call it only once every endpoint
    has answered, so a dead endpoint leaves the earlier records as they were."""
    check_out(out, resume, force)
    rec = out / "records.jsonl"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder ({exc.strerror or exc})", source=out,
                         where="--out") from None
    if force and not resume and rec.exists():
        rec.unlink()
    return out


def skipped_requests(plan: list[PlannedRequest]) -> list[dict]:
    """Every planned request that cannot run, with why (the same set leaves both sides)."""
    return [{"request": r.request, "reason": r.skip_reason} for r in plan if r.skip_reason]


def check_skips(plan: list[PlannedRequest], allow: bool) -> None:
    skipped = skipped_requests(plan)
    if plan and len(skipped) > MAX_SKIP_SHARE * len(plan) and not allow:
        first = "; ".join(f"request {s['request']}: {s['reason']}" for s in skipped[:3])
        raise InputError(f"{len(skipped)} of {len(plan)} requests cannot run on this engine "
                         f"({first}); shrink the trace (simkv trace scale / slice) or give "
                         "--allow-skip", where="--trace")


def _port(endpoint: str) -> int | None:
    return urlparse(endpoint).port


def _write_metrics(out: Path, endpoints, before, during_rows, after) -> None:
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as fh:
        for e in endpoints:
            fh.write(json.dumps({"endpoint": e, "when": "before", "samples": key_samples(before[e])}) + "\n")
        for row in during_rows:
            fh.write(json.dumps(row) + "\n")
        for e in endpoints:
            fh.write(json.dumps({"endpoint": e, "when": "after", "samples": key_samples(after[e])}) + "\n")


def _write_parquet(out: Path) -> list[dict]:
    recs = read_records(out / "records.jsonl")
    df = pd.DataFrame(recs)
    if len(df):
        df = df.sort_values("request", kind="stable").reset_index(drop=True)
        with atomic_writer(out / "records.parquet") as fh:
            df.to_parquet(fh, index=False)
    return df.to_dict("records") if len(df) else []


def _plan(tr: Trace, opts: ReplayOptions, endpoints: tuple[str, ...], key) -> tuple[str, list]:
    served = [client.served_model(e, key) for e in endpoints]
    lens = [m for _, m in served if m]
    popts = PlanOptions(endpoints=endpoints, time_scale=opts.time_scale,
                        max_requests=opts.max_requests, max_tokens_cap=opts.max_tokens,
                        output_scale=opts.output_scale, routing=opts.routing,
                        max_model_len=min(lens) if lens else None, vocab_size=opts.vocab,
                        salt=opts.salt)
    return served[0][0], build_plan(tr, popts)


def replay_and_measure(trace_path: Path, opts: ReplayOptions, *, say: Callable[[str], None],
                       on_record: Callable[[dict], None] | None = None) -> Measurement:
    """Plan, check, warm, scrape, replay, scrape (see the module docstring)."""
    tr = load_trace(trace_path)
    check_out(opts.out, opts.resume, opts.force)
    endpoints = tuple(check_url(e.rstrip("/")) for e in opts.endpoints)
    for u in opts.lmcache_metrics:
        check_url(u, where="--lmcache-metrics")
    key = opts.api_key
    model, plan = _plan(tr, opts, endpoints, key)
    check_skips(plan, opts.allow_skip)
    if opts.warmup and not opts.resume:
        resets = [client.warm_and_reset(e, model, opts.salt + 1_000_003, key) for e in endpoints]
        if not all(resets):
            say("note: could not reset the prefix cache (start vLLM with VLLM_SERVER_DEV_MODE=1); "
                "earlier prompts may still be cached: use a fresh --salt per run")
    before = {e: client.scrape(f"{e}/metrics", key) for e in endpoints}
    lm_before = {u: client.scrape(u) for u in opts.lmcache_metrics}
    if opts.require_metrics:
        for e, snap in before.items():
            snap.require(VLLM_REQUIRED + (VLLM_CONNECTOR_REQUIRED if opts.lmcache_metrics else ()), e)
        for u, snap in lm_before.items():
            snap.require(LMCACHE_REQUIRED, u)
    out = prepare_out(opts.out, opts.resume, opts.force)  # every endpoint answered
    copts = ClientOptions(model=model, timeout_s=opts.timeout_s, concurrency=opts.concurrency,
                          api_key=key)
    say(f"replaying {len(plan)} requests on {len(endpoints)} endpoint(s)")
    t = time.perf_counter()
    ports = [p for p in (_port(e) for e in endpoints) if p is not None]
    watchers = [TickWatcher(u) for u in opts.lmcache_metrics]
    with LoadMeter(ports) as meter, DuringScraper(endpoints, key) as during, \
            contextlib.ExitStack() as stack:
        for w in watchers:
            stack.enter_context(w)
        try:
            result = asyncio.run(replay_async(plan, out / "records.jsonl", copts,
                                              resume=opts.resume, on_record=on_record))
        except ServerDied as exc:
            raise InputError(f"replay stopped: {exc}") from None
    wall = time.perf_counter() - t
    end_wall = time.time()
    t0_wall = end_wall - (time.perf_counter() - (result.t0_perf_s or t))
    wakes = {w.url: w.wakes_on(result.t0_perf_s or t) for w in watchers}
    after = {e: client.scrape(f"{e}/metrics", key) for e in endpoints}
    lm_after = {u: client.scrape(u) for u in opts.lmcache_metrics}
    records = _write_parquet(out)
    summary = summarize(records)
    histograms = {e: histogram_deltas(before[e], after[e]) for e in endpoints}
    summary.update(wall_s=wall, skipped=len(skipped_requests(plan)), concurrency=opts.concurrency,
                   client_trip_mean_s=client_trip_mean_s(records, histograms),
                   skipped_requests=skipped_requests(plan),
                   machine=meter.result.as_dict() if meter.result else None)
    if meter.result is not None and not meter.result.quiet:
        r = meter.result
        def num(v: float | None) -> str:
            return "unknown" if v is None else f"{v:.2f}"

        say(f"note: the machine was loaded (load average {num(r.load_1m_before)} on {r.cpus} CPUs "
            f"before the replay; other work used {num(r.other_busy_cores)} cores during it): its "
            "timings are not the engine's alone (summary.json: machine.quiet = false)")
    connector = bool(opts.lmcache_metrics)
    _write_metrics(out, endpoints, before, during.rows, after)
    return Measurement(
        trace=tr, plan=plan, records=records, summary=summary,
        deltas={e: cache_deltas(before[e], after[e], connector=connector) for e in endpoints},
        histograms=histograms,
        lmcache={u: lmcache_deltas(lm_before[u], lm_after[u]) for u in opts.lmcache_metrics},
        after=after, load=meter.result,
        l1_wakes={u: v for u, v in wakes.items() if v is not None},
        t0_wall_s=t0_wall, end_wall_s=end_wall)
