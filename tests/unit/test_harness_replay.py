"""Replay client against a tiny fake streaming server: records, 5xx, timeouts, death, resume."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from aiohttp import web

from harness.plan import PlanOptions, build_plan
from harness.replay import ClientOptions, ServerDied, read_records, replay_async, summarize
from harness.testing import shared_prefix_trace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeServer:
    """Streams ``max_tokens`` chunks; fails requests listed in ``fail``; can die mid-replay."""

    def __init__(self, port: int, *, fail=(), slow=(), die_after: int | None = None) -> None:
        self.port, self.fail, self.slow, self.die_after = port, set(fail), set(slow), die_after
        self.seen: list[int] = []
        self.runner: web.AppRunner | None = None

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        assert request.headers.get("Authorization") == "Bearer sekret"
        idx = body["prompt"][0]  # tests put the request index in the first token
        self.seen.append(idx)
        if self.die_after is not None and len(self.seen) > self.die_after:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.stop()))
            await asyncio.sleep(0.5)
        if idx in self.fail:
            return web.Response(status=503, text="overloaded")
        if idx in self.slow:
            await asyncio.sleep(2.0)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(body["max_tokens"]):
            chunk = {"id": f"cmpl-fake{idx}", "choices": [{"text": "x"}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        usage = {"prompt_tokens": len(body["prompt"]), "completion_tokens": body["max_tokens"],
                 "prompt_tokens_details": {"cached_tokens": 0}}
        await resp.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/health", self.health)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await runner.cleanup()


def make_plan(port: int, n: int = 12):
    trace = shared_prefix_trace(9, n_requests=n)
    plan = build_plan(trace, PlanOptions(endpoints=(f"http://127.0.0.1:{port}",), time_scale=0.0,
                                         max_tokens_cap=3))
    # first token = request index so the fake server knows which request it serves
    return [type(p)(p.request, p.scheduled_s, p.endpoint, [p.request] + p.prompt[1:],
                    p.input_tokens, p.max_tokens, p.skip_reason) for p in plan]


async def serve_and_replay(server: FakeServer, plan, path, **kw):
    await server.start()
    try:
        return await replay_async(plan, path, ClientOptions(api_key="sekret", timeout_s=1.0,
                                                            concurrency=kw.pop("concurrency", 1)),
                                  **kw)
    finally:
        await server.stop()


def test_records_5xx_and_timeouts_are_per_request(tmp_path):
    port = free_port()
    path = tmp_path / "records.jsonl"
    server = FakeServer(port, fail={2, 5}, slow={7})
    asyncio.run(serve_and_replay(server, make_plan(port), path))
    recs = read_records(path)
    assert sorted(r["request"] for r in recs) == list(range(12))
    by = {r["request"]: r for r in recs}
    assert by[2]["status"] == "http_503" and by[5]["error"] == "overloaded"
    assert by[7]["status"] == "timeout"
    ok = [r for r in recs if r["status"] == "ok"]
    assert all(r["ttft_s"] > 0 and r["output_tokens"] == r["max_tokens"] for r in ok)
    assert all(r["error"] is None and r["cached_tokens"] == 0 for r in ok)
    # the streamed response's id is kept: it ties a request to the server's own log
    assert all(r["response_id"] == f"cmpl-fake{r['request']}" for r in ok)
    assert by[2]["response_id"] is None
    assert "sekret" not in path.read_text()
    s = summarize(recs)
    assert s["status"] == {"ok": 9, "http_503": 2, "timeout": 1}


def test_server_death_stops_then_resume_completes_without_duplicates(tmp_path):
    port = free_port()
    path = tmp_path / "records.jsonl"
    plan = make_plan(port, n=15)
    with pytest.raises(ServerDied, match="--resume"):
        asyncio.run(serve_and_replay(FakeServer(port, die_after=6), plan, path))
    first = read_records(path)
    assert 0 < len(first) < 15
    assert all(r["status"] == "ok" for r in first)
    second = FakeServer(port)
    asyncio.run(serve_and_replay(second, plan, path, resume=True))
    recs = read_records(path)
    ids = [r["request"] for r in recs]
    assert sorted(ids) == list(range(15)) and len(ids) == len(set(ids))
    assert not set(second.seen) & {r["request"] for r in first}


def test_api_key_never_in_repr():
    assert "sekret" not in repr(ClientOptions(api_key="sekret"))


def test_metrics_are_scraped_during_the_replay_too():
    """The during-replay scraper samples /metrics on its interval and records failures."""
    import http.server
    import threading
    import time

    from harness.scraper import DuringScraper

    body = (b"# TYPE vllm:prefix_cache_hits counter\nvllm:prefix_cache_hits_total 7.0\n"
            b"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc 0.5\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ok = f"http://127.0.0.1:{srv.server_address[1]}"
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        with DuringScraper((ok, dead), None, interval_s=0.05) as during:
            time.sleep(0.4)
    finally:
        srv.shutdown()
    good = [r for r in during.rows if r["endpoint"] == ok]
    bad = [r for r in during.rows if r["endpoint"] == dead]
    assert len(good) >= 2 and all(r["when"] == "during" and r["samples"] for r in good)
    assert bad and all("error" in r for r in bad)
    assert [r["t_s"] for r in good] == sorted(r["t_s"] for r in good)
