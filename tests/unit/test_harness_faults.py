"""Harness network faults against small aiohttp fake servers on 127.0.0.1 (issue 14).

Each fault must end ``simkv-harness`` with exit 2 and one line naming the URL and what was
wrong, never a traceback; the API key must not reach a message or a stored record even
when a server echoes the Authorization header back; ``--force`` must not touch earlier
records before the endpoints have answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web

import harness.cli as harness_cli
from simkv.cli.main import run
from simkv.trace import save_trace

KEY = "sk-test-7f3a9c1e5b"
METRICS = """# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0"} 10.0
vllm:prefix_cache_hits_total{engine="0"} 4.0
vllm:kv_cache_usage_perc{engine="0"} 0.1
vllm:cache_config_info{block_size="16",num_gpu_blocks="100"} 1.0
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fake:
    """An OpenAI-like server whose faults are chosen per test through ``mode``."""

    def __init__(self, mode: set[str]) -> None:
        self.mode = mode
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def models(self, request: web.Request) -> web.Response:
        entry = {"object": "model"} if "no_id" in self.mode else {"id": "tiny", "max_model_len": 4096}
        return web.json_response({"data": [entry]})

    async def metrics(self, request: web.Request) -> web.Response:
        if "no_metrics" in self.mode:
            return web.Response(status=404, text="Not Found")
        if "html_metrics" in self.mode:
            return web.Response(text="<html><body>dashboard</body></html>")
        return web.Response(text=METRICS)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        echoed = f"Authorization: {request.headers.get('Authorization')}"
        if "unauthorized" in self.mode:
            return web.Response(status=401, text=f"bad credentials; you sent {echoed}")
        if "echo_500" in self.mode:
            return web.Response(status=500, text=f"upstream failed for {echoed}")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"choices": [{"text": "x"}]}\n\n')
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/reset_prefix_cache", self.ok)
        app.router.add_get("/health", self.ok)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> Fake:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def trace_path(tmp_path, small_trace) -> Path:
    p = tmp_path / "t.parquet"
    save_trace(small_trace, p)
    return p


def _harness(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = run(harness_cli.app, argv, prog="simkv-harness")
    except SystemExit as exc:
        rc = int(exc.code or 0)
    _, err = capsys.readouterr()
    return rc, err


def _one_line(rc: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def _replay(trace: Path, url: str, out: Path, *extra: str) -> list[str]:
    return ["replay", "--trace", str(trace), "--endpoint", url, "--out", str(out),
            "--max-requests", "3", "--time-scale", "0", *extra]


@pytest.mark.parametrize("mode, needle", [
    ({"no_id"}, "/v1/models: the first model entry has no 'id'"),
    ({"no_metrics"}, "/metrics answered HTTP 404"),
    ({"html_metrics"}, "/metrics is not Prometheus text"),
    ({"unauthorized"}, "/v1/completions answered HTTP 401"),
])
def test_endpoint_fault_is_one_line_naming_the_url(mode, needle, trace_path, tmp_path, capsys,
                                                   monkeypatch):
    monkeypatch.setenv("SIMKV_API_KEY", KEY)
    with Fake(mode) as fake:
        rc, err = _harness(_replay(trace_path, fake.url, tmp_path / "out"), capsys)
    line = _one_line(rc, err)
    assert fake.url in line and needle in line, line
    assert KEY not in err


def test_closed_lmcache_metrics_port(trace_path, tmp_path, capsys):
    closed = f"http://127.0.0.1:{_free_port()}/metrics"
    with Fake(set()) as fake:
        rc, err = _harness(["validate", "--trace", str(trace_path), "--endpoint", fake.url,
                            "--lmcache-metrics", closed, "--out", str(tmp_path / "v"),
                            "--max-requests", "2"], capsys)
    line = _one_line(rc, err)
    assert f"cannot reach {closed}" in line, line


@pytest.mark.parametrize("value", ["-1", "0"])
def test_concurrency_must_be_positive(value, trace_path, tmp_path, capsys):
    rc, err = _harness(_replay(trace_path, "http://127.0.0.1:9", tmp_path / "o",
                               "--concurrency", value), capsys)
    assert "--concurrency: must be > 0" in _one_line(rc, err)


def test_echoed_authorization_header_is_redacted_everywhere(trace_path, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.setenv("SIMKV_API_KEY", KEY)
    out = tmp_path / "out"
    with Fake({"echo_500"}) as fake:
        rc, err = _harness(_replay(trace_path, fake.url, out, "--no-warmup"), capsys)
    assert rc == 0, err
    records = (out / "records.jsonl").read_text()
    assert "http_500" in records and "Authorization" in records  # the echo was stored...
    assert KEY not in records and "***" in records               # ...with the key redacted
    df = pd.read_parquet(out / "records.parquet")
    assert not df.astype(str).apply(lambda c: c.str.contains(KEY)).any().any()
    assert KEY not in err


def test_force_leaves_earlier_records_when_the_endpoint_is_down(trace_path, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    rec = out / "records.jsonl"
    rec.write_text('{"request": 0, "status": "ok"}\n')
    before = hashlib.sha256(rec.read_bytes()).hexdigest()
    dead = f"http://127.0.0.1:{_free_port()}"
    rc, err = _harness(_replay(trace_path, dead, out, "--force"), capsys)
    line = _one_line(rc, err)
    assert f"cannot reach {dead}/v1/models" in line, line
    assert hashlib.sha256(rec.read_bytes()).hexdigest() == before


def test_redact_patterns():
    """The key itself, and bearer-looking tokens of a key we were not told about."""
    from harness.netio import redact

    assert redact("Bearer abcdef123456 and token=zzzz9999", None) == "Bearer *** and token=***"
    assert redact(f"x {KEY} y", KEY) == "x *** y"
    assert redact("no secrets here", KEY) == "no secrets here"
