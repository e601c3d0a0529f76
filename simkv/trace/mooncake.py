"""Mooncake (FAST'25) JSONL traces: ``timestamp`` (ms), ``input_length``, ``output_length``,
``hash_ids`` (prefix-chained ids of 512-token blocks, ``len == ceil(input_length / 512)``).

Mooncake carries no sessions, models, tags or content hashes; those come back as unknown.
Reading streams line by line into growing typed buffers, so memory stays near the size of
the final arrays.  Timestamps are kept exactly: integer milliseconds map to ``ms / 1000`` s
and back.
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path

import numpy as np

from simkv.errors import InputError
from simkv.trace.formats import TraceFormat, register_format
from simkv.trace.jsonl import extend_hash_ids, int_field, json_lines, time_field
from simkv.trace.model import Trace

MOONCAKE_BLOCK_TOKENS = 512


def read_mooncake(path: Path, block_tokens: int = MOONCAKE_BLOCK_TOKENS) -> Trace:
    ts, inp, out = array("d"), array("q"), array("q")
    offsets = array("q", [0])
    hashes = array("Q")
    last_ts = -np.inf
    for lineno, obj in json_lines(path):
        t = time_field(obj, "timestamp", path, lineno, "ms")
        if t < last_ts:
            raise InputError(f"timestamps must not decrease ({t} after {last_ts})", source=path,
                             where=f"line {lineno}")
        last_ts = t
        n_in = int_field(obj, "input_length", path, lineno)
        n_out = int_field(obj, "output_length", path, lineno)
        extend_hash_ids(hashes, obj, n_in, block_tokens, path, lineno)
        ts.append(t / 1000.0)
        inp.append(n_in)
        out.append(n_out)
        offsets.append(len(hashes))
    if not ts:
        raise InputError("trace has no requests", source=path)
    # zero-copy views of the typed buffers (each array keeps its buffer alive): no second copy
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=np.frombuffer(ts, dtype=np.float64),
        input_tokens=np.frombuffer(inp, dtype=np.int64),
        output_tokens=np.frombuffer(out, dtype=np.int64),
        block_offsets=np.frombuffer(offsets, dtype=np.int64),
        block_hashes=np.frombuffer(hashes, dtype=np.uint64),
        meta={"source_format": "mooncake", "source_file": path.name},
    )


def _ms(t_s: float) -> int | float:
    ms = t_s * 1000.0
    r = round(ms)
    return int(r) if abs(ms - r) < 1e-6 * max(1.0, abs(ms)) and r / 1000.0 == t_s else ms


def write_mooncake(trace: Trace, path: Path) -> None:
    """Write JSONL in Mooncake's own key order; sessions, models, tags are dropped."""
    if trace.block_tokens != MOONCAKE_BLOCK_TOKENS:
        raise InputError(f"Mooncake traces use {MOONCAKE_BLOCK_TOKENS}-token blocks; this trace has "
                         f"{trace.block_tokens} (re-chunk it first)", where="block_tokens")
    off = trace.block_offsets
    hashes = trace.block_hashes.tolist()
    with path.open("w", encoding="utf-8") as fh:
        for i in range(trace.n_requests):
            fh.write(json.dumps({
                "timestamp": _ms(float(trace.arrival_s[i])),
                "input_length": int(trace.input_tokens[i]),
                "output_length": int(trace.output_tokens[i]),
                "hash_ids": hashes[off[i]:off[i + 1]],
            }))
            fh.write("\n")


register_format(TraceFormat("mooncake", read_mooncake, write_mooncake, (".jsonl", ".json"),
                            "Mooncake FAST'25 JSONL (512-token prefix-chained hash_ids)"))
