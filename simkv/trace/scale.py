"""Shrink or stretch a trace's token counts, keeping every hash chain: real traces on a small engine.

A Mooncake trace has 512-token blocks and prompts of tens of thousands of tokens; a CPU engine
takes a few thousand.  :func:`scale_tokens` multiplies the block size by ``factor`` (512 x 1/8
= 64) and every request's tokens with it, block by block: a request keeps exactly its blocks and
their hash ids, so which requests share which prefix, and for how many blocks, is unchanged;
only each block's token count changes.  A request's last, partial block keeps its share of a
block (``ceil(partial x factor)`` tokens, at least 1, at most one block).  Output lengths scale
by ``output_factor`` (default ``factor``), at least 1 token.

Re-blocking at another block size without changing token counts is
:func:`simkv.trace.rechunk.rechunk` (exact to a coarser size, approximate to a finer one).

:func:`too_long` lists the requests that still cannot run on an engine of ``max_model_len``
tokens (prompt plus output), so a user sees them before a replay skips them.

:func:`scale_chunks` is the streamed form the CLI uses: each function above is local to one
request (a request's chain lies within one chunk), so it runs chunk by chunk; the time stretch
carries the first arrival, and :class:`FitTally` counts what the report needs as chunks pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from simkv.errors import InputError
from simkv.trace.model import Trace


def scaled_block_tokens(block_tokens: int, factor: float) -> int:
    """The new block size; it must come out a whole number of tokens, at least 1."""
    if not (factor > 0 and math.isfinite(factor)):
        raise InputError("must be a positive number", where="--factor")
    new = block_tokens * factor
    if abs(new - round(new)) > 1e-9 or round(new) < 1:
        raise InputError(f"{block_tokens}-token blocks x {factor:g} is not a whole number of "
                         "tokens; choose a factor that divides the block size evenly",
                         where="--factor")
    return int(round(new))


def scale_tokens(trace: Trace, factor: float, *, output_factor: float | None = None) -> Trace:
    """``trace`` with block size and token counts multiplied by ``factor`` (see module doc)."""
    new_bt = scaled_block_tokens(trace.block_tokens, factor)
    of = factor if output_factor is None else output_factor
    if not (of > 0 and math.isfinite(of)):
        raise InputError("must be a positive number", where="--output-factor")
    n_blocks = np.diff(trace.block_offsets)
    inp = trace.input_tokens.astype(np.int64)
    full = np.maximum(n_blocks - 1, 0)
    partial = inp - full * trace.block_tokens  # tokens in the last block (0 if no blocks)
    last = np.where(n_blocks > 0,
                    np.clip(np.ceil(partial * factor - 1e-9), 1, new_bt), 0).astype(np.int64)
    new_inp = np.where(n_blocks > 0, full * new_bt + last, 0)
    new_out = np.maximum(np.round(trace.output_tokens * of), 1).astype(np.int64)
    meta = dict(trace.meta)
    meta["scaled_from"] = {"block_tokens": trace.block_tokens, "factor": factor,
                           "output_factor": of}
    return Trace.from_arrays(
        block_tokens=new_bt, arrival_s=trace.arrival_s, input_tokens=new_inp,
        output_tokens=new_out, block_offsets=trace.block_offsets, block_hashes=trace.block_hashes,
        session_ids=trace.session_ids, tenant_ids=trace.tenant_ids, model_index=trace.model_index,
        models=trace.models, block_tags=trace.block_tags, content_hashes=trace.content_hashes,
        meta=meta)


def check_time_factor(time_factor: float) -> None:
    if not (time_factor >= 0 and math.isfinite(time_factor)):
        raise InputError("must be >= 0", where="--time-factor")


def stretch_time(trace: Trace, time_factor: float, t0: float | None = None) -> Trace:
    """Arrival gaps multiplied by ``time_factor`` (relative to ``t0``, by default the first
    request's arrival; a chunk of a stream passes the stream's first arrival)."""
    check_time_factor(time_factor)
    if not trace.n_requests:
        return trace
    t0 = float(trace.arrival_s[0]) if t0 is None else t0
    return replace(trace, arrival_s=t0 + (trace.arrival_s - t0) * time_factor)


def scale_chunks(chunks: Iterable[Trace], *, factor: float | None = None,
                 output_factor: float | None = None, block_tokens: int | None = None,
                 time_factor: float = 1.0) -> Iterator[Trace]:
    """The CLI's scale as a stream: token scaling (``factor``) or re-blocking
    (``block_tokens``), then the time stretch, chunk by chunk."""
    from simkv.trace.rechunk import rechunk

    check_time_factor(time_factor)
    t0 = None
    for chunk in chunks:
        if factor is not None:
            chunk = scale_tokens(chunk, factor, output_factor=output_factor)
        elif block_tokens is not None:
            chunk = rechunk(chunk, block_tokens)
        if t0 is None and chunk.n_requests:
            t0 = float(chunk.arrival_s[0])
        yield stretch_time(chunk, time_factor, t0)


def too_long(trace: Trace, max_model_len: int) -> list[dict]:
    """Requests whose prompt plus output exceeds ``max_model_len`` tokens (they cannot run)."""
    total = trace.input_tokens + np.maximum(trace.output_tokens, 1)
    rows = np.flatnonzero(total > max_model_len)
    return [{"request": int(i), "input_tokens": int(trace.input_tokens[i]),
             "output_tokens": int(trace.output_tokens[i])} for i in rows]


@dataclass
class FitTally:
    """What `trace scale` / `slice` report about the trace they wrote, counted chunk by chunk:
    requests, block size, the longest prompt and (with ``max_model_len``) the requests that
    cannot run, numbered in the written trace's order."""

    max_model_len: int | None = None
    requests: int = 0
    block_tokens: int = 0
    input_tokens_max: int = 0
    cannot_run: list[int] = field(default_factory=list)

    def count(self, chunks: Iterable[Trace]) -> Iterator[Trace]:
        for chunk in chunks:
            self.block_tokens = chunk.block_tokens
            if chunk.n_requests:
                self.input_tokens_max = max(self.input_tokens_max, int(chunk.input_tokens.max()))
                if self.max_model_len is not None:
                    self.cannot_run += [self.requests + r["request"]
                                        for r in too_long(chunk, self.max_model_len)]
            self.requests += chunk.n_requests
            yield chunk
