"""The measured stage's replay and comparison (harness/stage.py) against a fake vLLM.

The fake server implements vLLM's automatic prefix caching rule directly (an unlimited cache of
full blocks keyed by their whole token prefix; at least one prompt token is always computed)
and exports the Prometheus counters the stage reads.  Expected values: the fake's own
counters (measured side) and, for the prediction, the same hits counted here by that rule;
simkv's vLLM policy (``harness.predict``) must give the identical hit ratio.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading

from aiohttp import web

from harness import stage
from harness.testing import shared_prefix_trace

BLOCK = 16


class FakeVllm:
    """/v1/models, streaming /v1/completions, /metrics and /reset_prefix_cache."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, ...]] = set()
        self.queries = self.hits = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    def hit_tokens(self, prompt: list[int]) -> int:
        """Leading full blocks seen before, leaving at least one token to compute."""
        n_full = (len(prompt) - 1) // BLOCK
        hit = 0
        while hit < n_full and tuple(prompt[: (hit + 1) * BLOCK]) in self.seen:
            hit += 1
        for k in range(1, len(prompt) // BLOCK + 1):
            self.seen.add(tuple(prompt[: k * BLOCK]))
        return hit * BLOCK

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        prompt = body["prompt"]
        self.queries += len(prompt)
        self.hits += self.hit_tokens(prompt)
        if not body.get("stream"):
            return web.json_response({"choices": [{"text": "xx"}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(body["max_tokens"]):
            await resp.write(f"data: {json.dumps({'choices': [{'text': 'x'}]})}\n\n".encode())
        usage = {"prompt_tokens": len(prompt), "completion_tokens": body["max_tokens"]}
        await resp.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "tiny", "max_model_len": 4096}]})

    async def reset(self, request: web.Request) -> web.Response:
        self.seen.clear()
        return web.Response(text="ok")

    async def metrics(self, request: web.Request) -> web.Response:
        text = ("# TYPE vllm:prefix_cache_queries counter\n"
                f"vllm:prefix_cache_queries_total {self.queries}\n"
                "# TYPE vllm:prefix_cache_hits counter\n"
                f"vllm:prefix_cache_hits_total {self.hits}\n"
                "# TYPE vllm:cache_config_info gauge\n"
                f'vllm:cache_config_info{{block_size="{BLOCK}",num_gpu_blocks="100000"}} 1\n'
                "# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc 0.1\n")
        return web.Response(text=text)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/reset_prefix_cache", self.reset)
        app.router.add_get("/metrics", self.metrics)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> FakeVllm:
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_validation_replay_matches_the_fake_engines_counters(tmp_path):
    """The stage's validation replay (harness.validate under the hood) on the fake engine."""
    trace = shared_prefix_trace(5, n_requests=40, block_tokens=BLOCK)
    with FakeVllm() as fake:
        endpoint = f"http://127.0.0.1:{fake.port}"
        q0, h0 = fake.queries, fake.hits
        res = stage.validation_replay(endpoint, tmp_path, None, trace=trace)
        q_all, h_all = fake.queries - q0, fake.hits - h0
    assert res["requests_sent"] == 40 and (tmp_path / "replay" / "records.parquet").is_file()
    assert res["block_tokens"] == BLOCK and res["cache_blocks"] == 100000
    # the warm-up request (sent before the first scrape) is the only traffic not measured
    q, h = res["measured_prefix_queries_tokens"], res["measured_prefix_hit_ratio"]
    assert 0 < q < q_all and q_all - q == 300  # the warm-up prompt is 300 tokens
    assert h == h_all / q  # the warm-up hits nothing (its tokens are its own)
    assert 0 < h < 1
    # simkv's vLLM policy on the sent prompts predicts what the rule above counted
    assert res["predicted_prefix_queries_tokens"] == q
    assert res["predicted_prefix_hit_ratio"] == h
    assert res["measured_ttft_p50_s"] is not None and res["predicted_ttft_p50_s"] is None
