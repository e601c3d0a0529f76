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
from simkv.trace.model import Trace

MOONCAKE_BLOCK_TOKENS = 512


def _int_field(obj: dict, key: str, path: Path, lineno: int) -> int:
    if key not in obj:
        raise InputError(f"missing field {key!r}", source=path, where=f"line {lineno}")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(f"field {key!r} must be an integer, got {v!r}", source=path,
                         where=f"line {lineno}")
    if v < 0:
        raise InputError(f"field {key!r} must be >= 0, got {v}", source=path, where=f"line {lineno}")
    if v >= 2**62:
        raise InputError(f"field {key!r} is implausibly large ({v})", source=path, where=f"line {lineno}")
    return v


def read_mooncake(path: Path, block_tokens: int = MOONCAKE_BLOCK_TOKENS) -> Trace:
    ts, inp, out = array("d"), array("q"), array("q")
    offsets = array("q", [0])
    hashes = array("Q")
    last_ts = -np.inf
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror}", source=path) from None
    with fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"malformed JSON ({exc.msg})", source=path, where=f"line {lineno}") from None
            except ValueError:  # UnicodeDecodeError and friends
                raise InputError("not UTF-8 JSON text", source=path, where=f"line {lineno}") from None
            if not isinstance(obj, dict):
                raise InputError("each line must be a JSON object", source=path, where=f"line {lineno}")
            if "timestamp" not in obj:
                raise InputError("missing field 'timestamp'", source=path, where=f"line {lineno}")
            t = obj["timestamp"]
            if isinstance(t, bool) or not isinstance(t, int | float) or not np.isfinite(t) or t < 0:
                raise InputError(f"field 'timestamp' must be a number of ms >= 0, got {t!r}",
                                 source=path, where=f"line {lineno}")
            if t < last_ts:
                raise InputError(f"timestamps must not decrease ({t} after {last_ts})", source=path,
                                 where=f"line {lineno}")
            last_ts = t
            n_in = _int_field(obj, "input_length", path, lineno)
            n_out = _int_field(obj, "output_length", path, lineno)
            ids = obj.get("hash_ids")
            if not isinstance(ids, list):
                raise InputError("field 'hash_ids' must be a list of integers", source=path,
                                 where=f"line {lineno}")
            expected = -(-n_in // block_tokens)
            if len(ids) != expected:
                raise InputError(f"hash_ids has {len(ids)} entries, expected ceil(input_length / "
                                 f"{block_tokens}) = {expected}", source=path, where=f"line {lineno}")
            try:
                hashes.extend(ids)
            except (TypeError, OverflowError):
                raise InputError("hash_ids must hold integers in [0, 2^64)", source=path,
                                 where=f"line {lineno}") from None
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
