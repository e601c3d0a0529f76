"""Dispatch lateness of the replay client at 100 requests/s against a minimal local server."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from aiohttp import web

from harness.plan import PlannedRequest
from harness.replay import ClientOptions, read_records, replay_async


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run(tmp_path, n: int, rate: float) -> np.ndarray:
    async def completions(request):
        body = await request.json()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(body["max_tokens"]):
            await resp.write(b'data: {"choices": [{"text": "x"}]}\n\n')
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    plan = [PlannedRequest(i, i / rate, f"http://127.0.0.1:{port}", [3] * 32, 32, 4)
            for i in range(n)]
    path = tmp_path / "records.jsonl"
    try:
        await replay_async(plan, path, ClientOptions(concurrency=None))
    finally:
        await runner.cleanup()
    recs = read_records(path)
    return np.array([r["sent_s"] - r["scheduled_s"] for r in recs])


@pytest.mark.bench
def test_dispatch_lateness_at_100_rps(benchmark, tmp_path):
    runs = []

    def once():
        d = tmp_path / f"run{len(runs)}"
        d.mkdir()
        runs.append(asyncio.run(_run(d, 300, 100.0)))

    benchmark.pedantic(once, rounds=1, iterations=1)
    late = runs[-1]
    p99_ms = float(np.percentile(late, 99) * 1e3)
    benchmark.extra_info["dispatch_lateness_p50_ms"] = float(np.percentile(late, 50) * 1e3)
    benchmark.extra_info["dispatch_lateness_p99_ms"] = p99_ms
    # the goal is p99 <= 2 ms; as a ratio it is gated by `make bench-check`, not here
    benchmark.extra_info["dispatch_p99_over_2ms_ratio"] = p99_ms / 2.0
