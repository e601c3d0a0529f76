"""Helpers the stages share: unlimited-cache engine runs, working-set sizes, trace windows.

Stage modules import the simulators inside their functions: registering the stages (and
reusing every cached one) then loads no simulator at all, which keeps a second run fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkv.pipeline.workload import WorkloadInput


def blend_recompute_share() -> float:
    """The share the report uses: the CLI's default for ``--blend-recompute-share``
    (``simkv.cache.config``, read on use so that importing a stage loads no simulator)."""
    from simkv.cache.config import DEFAULT_BLEND_RECOMPUTE_SHARE

    return DEFAULT_BLEND_RECOMPUTE_SHARE


def unlimited(w: WorkloadInput, reuse: str = "prefix"):
    """An unlimited, TTL-free LRU cache over the workload (the most any cache can reuse),
    walked as a stream; the summary only (no per-request records kept)."""
    from simkv.cache import CacheConfig
    from simkv.cache.engine import simulate_stream

    cfg = CacheConfig(reuse=reuse,
                      blend_recompute_share=blend_recompute_share() if reuse == "chunk" else 0.0)
    return simulate_stream(w.chunks, cfg, keep=False)


def working_set_bytes(w: WorkloadInput, chunk_requests: int | None = None) -> int:
    """Bytes of KV of every distinct block of the trace (each at its own model's size: that of
    its last access, as the whole-trace assignment ``weight[ids] = bytes`` leaves it), walked
    chunk by chunk with the id map carried (:mod:`simkv.cache.working_set`)."""
    from simkv.cache.working_set import working_set_bytes as stream_working_set_bytes

    return stream_working_set_bytes(w.chunks, chunk_requests)


@dataclass
class RequestTotals:
    """Per-workload request counts and sums, read as a stream."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    sessions: int = 0
    first_s: float = 0.0
    last_s: float = 0.0


def request_totals(w: WorkloadInput, chunk_requests: int | None = None) -> RequestTotals:
    """Requests, token sums, distinct session ids and the first and last arrival."""
    out = RequestTotals()
    sessions: set[int] = set()
    for chunk in w.chunks.chunks(chunk_requests, columns=(), ids_as_keys=True):
        if not chunk.n_requests:
            continue
        if out.requests == 0:
            out.first_s = float(chunk.arrival_s[0])
        out.last_s = float(chunk.arrival_s[-1])
        out.requests += chunk.n_requests
        out.input_tokens += int(chunk.input_tokens.sum())
        out.output_tokens += int(chunk.output_tokens.sum())
        sessions.update(np.unique(chunk.session_ids).tolist())
    out.sessions = len(sessions)
    return out


def window_s(w: WorkloadInput) -> float:
    t = request_totals(w)
    return t.last_s - t.first_s if t.requests > 1 else 0.0
