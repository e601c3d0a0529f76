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
"""

from __future__ import annotations

import math
from dataclasses import replace

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


def stretch_time(trace: Trace, time_factor: float) -> Trace:
    """Arrival gaps multiplied by ``time_factor`` (relative to the first request)."""
    if not (time_factor >= 0 and math.isfinite(time_factor)):
        raise InputError("must be >= 0", where="--time-factor")
    if not trace.n_requests:
        return trace
    t0 = float(trace.arrival_s[0])
    return replace(trace, arrival_s=t0 + (trace.arrival_s - t0) * time_factor)


def too_long(trace: Trace, max_model_len: int) -> list[dict]:
    """Requests whose prompt plus output exceeds ``max_model_len`` tokens (they cannot run)."""
    total = trace.input_tokens + np.maximum(trace.output_tokens, 1)
    rows = np.flatnonzero(total > max_model_len)
    return [{"request": int(i), "input_tokens": int(trace.input_tokens[i]),
             "output_tokens": int(trace.output_tokens[i])} for i in rows]
