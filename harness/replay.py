"""Replay planned requests against OpenAI-compatible endpoints with a streaming aiohttp client.

The whole schedule is computed before sending (:mod:`harness.plan`); the dispatcher sleeps until
each send time (a short spin for the last millisecond) so lateness measures the client, not the
scheduler.  Each request's record is appended to a JSONL file as soon as it finishes, so a crash
loses nothing already finished and ``--resume`` skips every request that has a record.

Faults: an HTTP error status or a timeout is recorded for that request and the replay goes on;
a connection failure with the server's ``/health`` no longer answering means the server died:
the replay stops with :class:`ServerDied`, requests in flight are not recorded (a resume sends
them again).  API keys go in a header only, never in a record or a message.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np

from harness.netio import BODY_CHARS, redact
from harness.plan import PlannedRequest

RECORD_COLUMNS = ("request", "scheduled_s", "ready_s", "sent_s", "ttft_s", "e2e_s", "itl_s", "itl_list_s",
                  "prompt_tokens", "cached_tokens", "output_tokens", "max_tokens", "status",
                  "error", "endpoint", "response_id")


class ServerDied(RuntimeError):
    """An endpoint stopped answering mid-replay."""


@dataclass(frozen=True)
class ClientOptions:
    model: str = "tiny"
    timeout_s: float = 600.0
    concurrency: int | None = 1
    api_key: str | None = None

    def __repr__(self) -> str:  # never print the key
        return (f"ClientOptions(model={self.model!r}, timeout_s={self.timeout_s}, "
                f"concurrency={self.concurrency}, api_key={'***' if self.api_key else None})")


def read_records(path: Path) -> list[dict]:
    """Records already on disk (a torn last line, from a kill mid-write, is ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _payload(req: PlannedRequest, model: str) -> dict:
    return {"model": model, "prompt": req.prompt, "max_tokens": req.max_tokens,
            "stream": True, "ignore_eos": True, "temperature": 0.0,
            "stream_options": {"include_usage": True}}


async def _healthy(session: aiohttp.ClientSession, endpoint: str) -> bool:
    try:
        async with session.get(f"{endpoint}/health",
                               timeout=aiohttp.ClientTimeout(total=5)) as resp:
            return resp.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


async def send_one(session: aiohttp.ClientSession, req: PlannedRequest, t0: float,
                   opts: ClientOptions, headers: dict, ready_s: float | None = None) -> dict:
    """Send one streaming completion; the record of what happened (raises on connection loss).

    ``ready_s``: when the request could first go (its send time, or later when it waited for a
    concurrency slot); lateness is measured from it, not from a schedule the slot limit moved."""
    rec = {"request": req.request, "scheduled_s": req.scheduled_s, "ready_s": ready_s, "sent_s": None,
           "ttft_s": None, "e2e_s": None, "itl_s": None, "itl_list_s": [],
           "prompt_tokens": len(req.prompt), "cached_tokens": None, "output_tokens": 0,
           "max_tokens": req.max_tokens, "status": "ok", "error": None,
           "endpoint": req.endpoint, "response_id": None}
    if req.skip_reason:
        rec.update(status="skipped", error=req.skip_reason, prompt_tokens=req.input_tokens)
        return rec
    body = json.dumps(_payload(req, opts.model))
    sent = time.perf_counter()
    rec["sent_s"] = sent - t0
    last = None
    times: list[float] = []
    usage = None
    try:
        async with session.post(f"{req.endpoint}/v1/completions", data=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=opts.timeout_s)) as resp:
            if resp.status != 200:
                text = (await resp.content.read(BODY_CHARS * 4)).decode("utf-8", "replace")
                error = redact(" ".join(text.split()), opts.api_key)[:BODY_CHARS]
                rec.update(status=f"http_{resp.status}", error=error)
                rec["e2e_s"] = time.perf_counter() - sent
                return rec
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                now = time.perf_counter()
                try:
                    chunk = json.loads(data)
                except (ValueError, RecursionError):
                    chunk = None
                if not isinstance(chunk, dict):
                    rec.update(status="bad_stream", error="a streamed chunk is not a JSON object",
                               e2e_s=time.perf_counter() - sent)
                    return rec
                if rec["response_id"] is None and isinstance(chunk.get("id"), str):
                    rec["response_id"] = chunk["id"][:200]  # ties the server's log to it
                if chunk.get("usage"):
                    usage = chunk["usage"]
                if chunk.get("choices"):
                    times.append(now)
                    last = now
    except TimeoutError:
        rec.update(status="timeout", error=f"no complete answer within {opts.timeout_s:g} s",
                   e2e_s=time.perf_counter() - sent)
        return rec
    end = last if last is not None else time.perf_counter()
    if times:
        rec["ttft_s"] = times[0] - sent
        itl = np.diff(times).tolist()
        rec["itl_list_s"] = itl
        rec["itl_s"] = float(np.mean(itl)) if itl else None
    rec["e2e_s"] = end - sent
    if isinstance(usage, dict):
        rec["prompt_tokens"] = _count(usage.get("prompt_tokens"), len(req.prompt))
        rec["output_tokens"] = _count(usage.get("completion_tokens"), len(times))
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        rec["cached_tokens"] = _count(cached, None)
    else:
        rec["output_tokens"] = len(times)
    return rec


def _count(value: object, default: int | None) -> int | None:
    """A token count from a server's usage block (a wrong-typed one falls back to ``default``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return default
    return value


@dataclass
class ReplayResult:
    records: list[dict]
    skipped_done: int
    t0_perf_s: float | None = None  # time.perf_counter() of the replay clock's zero


async def replay_async(plan: list[PlannedRequest], out_path: Path, opts: ClientOptions, *,
                       resume: bool = False,
                       on_record: Callable[[dict], None] | None = None) -> ReplayResult:
    """Replay ``plan`` (in schedule order), appending each finished record to ``out_path``."""
    done = {int(r["request"]) for r in read_records(out_path)} if resume else set()
    pending = [r for r in plan if r.request not in done]
    headers = {"Content-Type": "application/json"}
    if opts.api_key:
        headers["Authorization"] = f"Bearer {opts.api_key}"
    records: list[dict] = []
    if not pending:
        return ReplayResult(records, len(done))
    shift = pending[0].scheduled_s
    sem = asyncio.Semaphore(opts.concurrency) if opts.concurrency else None
    died: list[str] = []
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        with open(out_path, "a", encoding="utf-8") as fh:

            async def run(req: PlannedRequest, ready_s: float) -> None:
                try:
                    rec = await send_one(session, req, t0, opts, headers, ready_s)
                except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                        ConnectionError) as exc:
                    if not await _healthy(session, req.endpoint):
                        died.append(f"{req.endpoint} stopped answering during request "
                                    f"{req.request} ({type(exc).__name__})")
                        stop.set()
                        return
                    rec = {"request": req.request, "scheduled_s": req.scheduled_s,
                           "ready_s": ready_s, "sent_s": None, "ttft_s": None, "e2e_s": None, "itl_s": None,
                           "itl_list_s": [], "prompt_tokens": len(req.prompt),
                           "cached_tokens": None, "output_tokens": 0,
                           "max_tokens": req.max_tokens, "status": "error",
                           "error": type(exc).__name__, "endpoint": req.endpoint,
                           "response_id": None}
                finally:
                    if sem is not None:
                        sem.release()
                if stop.is_set() and died:
                    return
                if rec.get("error"):
                    rec["error"] = redact(str(rec["error"]), opts.api_key)
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                records.append(rec)
                if on_record is not None:
                    on_record(rec)

            tasks: list[asyncio.Task] = []
            t0 = time.perf_counter() - shift
            for req in pending:
                if stop.is_set():
                    break
                if sem is not None:
                    await sem.acquire()
                    if stop.is_set():
                        sem.release()
                        break
                target = t0 + req.scheduled_s
                ready_s = max(req.scheduled_s, time.perf_counter() - t0)
                delay = target - time.perf_counter()
                if delay > 0.002:
                    await asyncio.sleep(delay - 0.0015)
                while time.perf_counter() < target:
                    await asyncio.sleep(0)
                tasks.append(asyncio.create_task(run(req, ready_s)))
            if stop.is_set():
                for t in tasks:
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    if died:
        raise ServerDied(f"{died[0]}; {len(records) + len(done)} finished records are in "
                         f"{out_path} (continue with --resume)")
    return ReplayResult(records, len(done), t0)


def percentile(values, q: float) -> float | None:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(np.percentile(arr, q)) if arr.size else None


def summarize(records: list[dict]) -> dict:
    """Counts by status, TTFT / E2E percentiles and dispatch lateness of finished requests."""
    status: dict[str, int] = {}
    for r in records:
        status[r["status"]] = status.get(r["status"], 0) + 1
    ok = [r for r in records if r["status"] == "ok"]
    late = [r["sent_s"] - max(r["scheduled_s"], r.get("ready_s") or r["scheduled_s"])
            for r in records if r.get("sent_s") is not None]
    prompt = sum(r["prompt_tokens"] for r in ok)
    cached = [r["cached_tokens"] for r in ok if r.get("cached_tokens") is not None]
    return {
        "requests": len(records), "status": status,
        "ttft_p50_s": percentile([r["ttft_s"] for r in ok], 50),
        "ttft_p90_s": percentile([r["ttft_s"] for r in ok], 90),
        "ttft_p99_s": percentile([r["ttft_s"] for r in ok], 99),
        "e2e_p50_s": percentile([r["e2e_s"] for r in ok], 50),
        "lateness_p50_s": percentile(late, 50), "lateness_p99_s": percentile(late, 99),
        "prompt_tokens": prompt,
        "usage_cached_ratio": (sum(cached) / prompt) if prompt and len(cached) == len(ok) else None,
    }
