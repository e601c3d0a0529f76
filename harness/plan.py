"""The replay plan, computed before anything is sent: send times, prompts, routing, skips.

Send time of request ``i``: ``(arrival_s[i] - arrival_s[0]) * time_scale`` (``time_scale`` 1 is
real time, 0.5 twice as fast, 0 back to back).  ``max_tokens`` is the trace's output length,
optionally scaled and capped, at least 1.  A request whose prompt plus output exceeds the
engine's maximum length is planned as skipped (recorded and counted, never sent).

Routing over several endpoints: ``round_robin`` sends trace request ``i`` to endpoint
``i mod n``; ``prefix`` sends it to the endpoint chosen by its first block's hash, so requests
sharing a first block meet on one replica.  The prediction splits requests the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.prompts import PromptBuilder
from simkv.errors import InputError
from simkv.hashing import route_hash
from simkv.trace.model import Trace

ROUTINGS = ("round_robin", "prefix")


@dataclass(frozen=True)
class PlanOptions:
    endpoints: tuple[str, ...]
    time_scale: float = 1.0
    max_requests: int | None = None
    max_tokens_cap: int | None = None
    output_scale: float = 1.0
    routing: str = "round_robin"
    max_model_len: int | None = None
    vocab_size: int = 4096
    salt: int = 0

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise InputError("give at least one --endpoint", where="--endpoint")
        if self.routing not in ROUTINGS:
            raise InputError(f"unknown routing {self.routing!r} (valid: {', '.join(ROUTINGS)})",
                             where="--routing")
        if self.time_scale < 0:
            raise InputError("must be >= 0", where="--time-scale")
        if self.max_requests is not None and self.max_requests < 1:
            raise InputError("must be >= 1", where="--max-requests")


@dataclass(frozen=True)
class PlannedRequest:
    request: int
    scheduled_s: float
    endpoint: str
    prompt: list[int]
    input_tokens: int
    max_tokens: int
    skip_reason: str | None = None


def route(trace: Trace, rows: np.ndarray, endpoints: tuple[str, ...], routing: str) -> list[str]:
    """Endpoint of each planned request (the same function drives the prediction)."""
    n = len(endpoints)
    if routing == "round_robin":
        return [endpoints[int(i) % n] for i in rows]
    out = []
    for i in rows:
        blocks = trace.blocks(int(i))
        key = int(blocks[0]) if len(blocks) else 0
        out.append(endpoints[route_hash(key) % n])
    return out


def max_tokens_of(trace: Trace, opts: PlanOptions) -> np.ndarray:
    out = np.maximum(np.round(trace.output_tokens * opts.output_scale).astype(np.int64), 1)
    if opts.max_tokens_cap is not None:
        out = np.minimum(out, max(1, opts.max_tokens_cap))
    return out


def build_plan(trace: Trace, opts: PlanOptions) -> list[PlannedRequest]:
    n = trace.n_requests if opts.max_requests is None else min(opts.max_requests, trace.n_requests)
    rows = np.arange(n)
    builder = PromptBuilder(trace, opts.vocab_size, opts.salt)
    start = float(trace.arrival_s[0]) if n else 0.0
    when = (trace.arrival_s[:n] - start) * opts.time_scale
    max_tokens = max_tokens_of(trace, opts)
    endpoints = route(trace, rows, opts.endpoints, opts.routing)
    plan = []
    for i in rows:
        p = int(trace.input_tokens[i])
        mt = int(max_tokens[i])
        skip = None
        if p == 0:
            skip = "empty prompt"
        elif opts.max_model_len is not None and p + mt > opts.max_model_len:
            skip = f"prompt {p} + output {mt} tokens exceeds the engine's {opts.max_model_len}"
        prompt = [] if skip else builder.tokens(int(i)).tolist()
        plan.append(PlannedRequest(int(i), float(when[i]), endpoints[int(i)], prompt, p, mt, skip))
    return plan
