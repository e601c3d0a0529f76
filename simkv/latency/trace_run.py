"""The latency simulation over a stream of chunks: routing, caches, prices, records.

``simkv.latency.api.simulate_with_latency`` pulls the trace chunk by chunk through here: each
chunk is routed (the router's state carried), looked up in the caches (one carried
:class:`~simkv.cache.engine.CacheRun` per replica, or the shared bucket), priced, and handed to
the SimPy replicas (``simkv.latency.serving.serve_stream``), which pull the next chunk when the
simulated clock reaches it.  A chunk's records are complete once all its requests are through
prefill; they then go to the sink (and are kept only when asked), and their TTFT and queue
wait are spilled for the exact percentiles.  Memory: per-block cache state, one chunk ahead,
and the requests in flight.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from simkv.analysis.quantiles import Spill
from simkv.cache.config import CacheConfig
from simkv.cache.engine import CacheRun
from simkv.cache.stream import BlockStream
from simkv.trace.model import Trace


def block_positions(trace: Trace, rows: np.ndarray) -> np.ndarray:
    """Positions in ``trace``'s flat block arrays of the blocks of requests ``rows``."""
    starts, ends = trace.block_offsets[rows], trace.block_offsets[rows + 1]
    lengths = ends - starts
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)


class _Sums:
    """The engine summary's sums over requests served by several caches."""

    KEYS = ("hit_blocks", "prefix_hit_tokens", "reused_tokens", "evictions", "expirations")

    def __init__(self) -> None:
        self.requests = self.input_tokens = self.accesses = 0
        self.sums = dict.fromkeys(self.KEYS, 0)
        self.blocks = BlockStream()  # unique blocks over the whole stream
        self.block_tokens = 0

    def add(self, chunk: Trace, rec: dict) -> None:
        self.requests += chunk.n_requests
        self.input_tokens += int(chunk.input_tokens.sum())
        self.accesses += chunk.n_block_accesses
        self.block_tokens = chunk.block_tokens
        self.blocks.feed(chunk)
        for k in self.KEYS:
            self.sums[k] += int(rec[k].sum())

    def summary(self, cfg: CacheConfig) -> dict:
        inp, acc, s = self.input_tokens, self.accesses, self.sums
        return {
            "requests": self.requests, "input_tokens": inp, "block_accesses": acc,
            "unique_blocks": int(self.blocks.n_objects),
            "block_hit_ratio": float(s["hit_blocks"] / acc) if acc else 0.0,
            "prefix_hit_tokens": s["prefix_hit_tokens"],
            "prefix_token_hit_ratio": s["prefix_hit_tokens"] / inp if inp else 0.0,
            "reused_tokens": s["reused_tokens"],
            "token_reuse_ratio": s["reused_tokens"] / inp if inp else 0.0,
            "evictions": s["evictions"], "expirations": s["expirations"],
            "policy": cfg.policy, "capacity_bytes": cfg.capacity_bytes,
            "capacity_blocks": cfg.capacity_blocks, "ttl_s": cfg.ttl_s, "ttl_mode": cfg.ttl_mode,
            "reuse": cfg.reuse, "block_tokens": self.block_tokens,
        }


class ReplicaCaches:
    """Each replica's own cache over the requests routed to it (one replica: the plain
    engine), fed chunk by chunk; records come back stitched in request order."""

    def __init__(self, cfg: CacheConfig, replicas: int, specs) -> None:
        self.cfg, self.replicas = cfg, int(replicas)
        self.runs = [CacheRun(cfg, specs=specs) for _ in range(self.replicas)]
        self.sums = _Sums() if self.replicas > 1 else None

    def feed(self, chunk: Trace, route: np.ndarray, first: int) -> tuple[dict, np.ndarray]:
        if self.sums is None:
            return self.runs[0].feed(chunk)
        if not chunk.n_requests:  # nothing to route: the columns of an empty chunk
            rec, hit = self.runs[0].feed(chunk)
            self.sums.add(chunk, rec)
            return rec, hit
        rec: dict[str, np.ndarray] = {}
        hit = np.zeros(chunk.n_block_accesses, dtype=np.uint8)
        for r, run in enumerate(self.runs):
            rows = np.flatnonzero(route == r)
            if not len(rows):
                continue
            part, part_hit = run.feed(chunk.select(rows))
            for key, values in part.items():
                if key not in rec:
                    rec[key] = np.empty(chunk.n_requests, dtype=values.dtype)
                rec[key][rows] = values
            hit[block_positions(chunk, rows)] = part_hit
        rec["request"] = first + np.arange(chunk.n_requests, dtype=np.int64)
        rec["arrival_s"] = chunk.arrival_s
        self.sums.add(chunk, rec)
        return rec, hit

    def summary(self) -> dict:
        return self.runs[0].summary() if self.sums is None else self.sums.summary(self.cfg)


class Records:
    """Chunks waiting for their requests' TTFT; emitted in order once complete."""

    def __init__(self, keep: bool, sink: Callable[[pd.DataFrame], None] | None,
                 on_chunk: Callable[[int], None] | None) -> None:
        self.keep, self.sink, self.on_chunk = keep, sink, on_chunk
        self.pending: list[list] = []  # [first, columns, out, finished, hit]
        self.kept: list[pd.DataFrame] = []
        self.hits: list[np.ndarray] = []
        self.ttft, self.queue = Spill(), Spill()
        self.done = 0

    def add(self, first: int, columns: dict, hit: np.ndarray) -> None:
        n = len(columns["request"])
        self.pending.append([first, columns, np.zeros((n, 3)), 0, hit])
        self._flush()

    def on_done(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Requests through prefill (any replica, any chunk still pending)."""
        if not len(rows):
            return
        if len(self.pending) == 1:  # the usual case: one chunk in flight
            entry = self.pending[0]
            entry[2][rows - entry[0]] = out
            entry[3] += len(rows)
            self._flush()
            return
        firsts = np.array([p[0] for p in self.pending], dtype=np.int64)
        which = np.searchsorted(firsts, rows, side="right") - 1
        for c in np.unique(which):
            mine = which == c
            entry = self.pending[int(c)]
            entry[2][rows[mine] - entry[0]] = out[mine]
            entry[3] += int(mine.sum())
        self._flush()

    def _flush(self) -> None:
        while self.pending and self.pending[0][3] == len(self.pending[0][2]):
            first, columns, out, _, hit = self.pending.pop(0)
            ordered = {}
            for key, values in columns.items():  # queue_s before load_s, ttft_s before the last
                if key == "load_s":
                    ordered["queue_s"] = out[:, 0]
                elif key == "load_beats_recompute":
                    ordered["ttft_s"] = out[:, 1]
                ordered[key] = values
            frame = pd.DataFrame(ordered)
            self.ttft.append(out[:, 1])
            self.queue.append(out[:, 0])
            if self.sink is not None:
                self.sink(frame)
            if self.keep:
                self.kept.append(frame)
                self.hits.append(hit)
            self.done = first + len(out)
            if self.on_chunk is not None:
                self.on_chunk(self.done)

    def close(self) -> None:
        self.ttft.close()
        self.queue.close()
