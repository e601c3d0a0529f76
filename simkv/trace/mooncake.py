"""Mooncake (FAST'25) JSONL traces: ``timestamp`` (ms), ``input_length``, ``output_length``,
``hash_ids`` (prefix-chained ids of 512-token blocks, ``len == ceil(input_length / 512)``).

Mooncake carries no sessions, models, tags or content hashes; those come back as unknown.
Reading streams line by line into growing typed buffers, one chunk of requests at a time.  Timestamps are kept exactly: integer milliseconds map to ``ms / 1000`` s
and back.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from simkv.atomicio import atomic_writer
from simkv.errors import InputError
from simkv.trace.format_registry import TraceFormat, register_format
from simkv.trace.jsonl import extend_hash_ids, int_field, json_lines, time_field
from simkv.trace.model import Trace

MOONCAKE_BLOCK_TOKENS = 512


def iter_mooncake(path: Path, chunk_requests: int = 1 << 16, columns=None, *,
                  ids_as_keys: bool = False,
                  block_tokens: int = MOONCAKE_BLOCK_TOKENS) -> Iterator[Trace]:
    """Consecutive chunks of ``chunk_requests`` requests, read line by line.

    ``columns`` and ``ids_as_keys`` are the common reader signature; Mooncake has no optional
    columns and no stored ids, so its chunks always carry the hashes themselves.
    """
    last_ts = -np.inf
    buf = _Buffers()
    meta = {"source_format": "mooncake", "source_file": path.name}
    for lineno, obj in json_lines(path):
        t = time_field(obj, "timestamp", path, lineno, "ms")
        if t < last_ts:
            raise InputError(f"timestamps must not decrease ({t} after {last_ts})", source=path,
                             where=f"line {lineno}")
        last_ts = t
        n_in = int_field(obj, "input_length", path, lineno)
        n_out = int_field(obj, "output_length", path, lineno)
        extend_hash_ids(buf.hashes, obj, n_in, block_tokens, path, lineno)
        buf.ts.append(t / 1000.0)
        buf.inp.append(n_in)
        buf.out.append(n_out)
        buf.offsets.append(len(buf.hashes))
        if len(buf.ts) >= chunk_requests:
            yield buf.trace(block_tokens, meta)
            buf = _Buffers()
    if buf.ts:
        yield buf.trace(block_tokens, meta)
    elif last_ts == -np.inf:
        raise InputError("trace has no requests", source=path)


class _Buffers:
    """Growing typed buffers of one chunk (no per-request Python objects kept)."""

    def __init__(self) -> None:
        self.ts, self.inp, self.out = array("d"), array("q"), array("q")
        self.offsets = array("q", [0])
        self.hashes = array("Q")

    def trace(self, block_tokens: int, meta: dict) -> Trace:
        # zero-copy views of the typed buffers (each array keeps its buffer alive)
        return Trace.from_arrays(
            block_tokens=block_tokens, arrival_s=np.frombuffer(self.ts, dtype=np.float64),
            input_tokens=np.frombuffer(self.inp, dtype=np.int64),
            output_tokens=np.frombuffer(self.out, dtype=np.int64),
            block_offsets=np.frombuffer(self.offsets, dtype=np.int64),
            block_hashes=np.frombuffer(self.hashes, dtype=np.uint64), meta=meta)


def read_mooncake(path: Path, block_tokens: int = MOONCAKE_BLOCK_TOKENS) -> Trace:
    """The whole file as one chunk."""
    chunks = list(iter_mooncake(path, chunk_requests=2**62, block_tokens=block_tokens))
    return chunks[0]


def _ms(t_s: float) -> int | float:
    ms = t_s * 1000.0
    r = round(ms)
    return int(r) if abs(ms - r) < 1e-6 * max(1.0, abs(ms)) and r / 1000.0 == t_s else ms


def write_mooncake_chunks(chunks: Iterable[Trace], path: Path) -> None:
    """Write JSONL in Mooncake's own key order; sessions, models, tags are dropped."""
    with atomic_writer(path, "w") as fh:
        for trace in chunks:
            if trace.block_tokens != MOONCAKE_BLOCK_TOKENS:
                raise InputError(f"Mooncake traces use {MOONCAKE_BLOCK_TOKENS}-token blocks; this "
                                 f"trace has {trace.block_tokens} (re-chunk it first)",
                                 where="block_tokens")
            off = trace.block_offsets
            hashes = trace.block_hashes.tolist()
            for i in range(trace.n_requests):
                fh.write(json.dumps({
                    "timestamp": _ms(float(trace.arrival_s[i])),
                    "input_length": int(trace.input_tokens[i]),
                    "output_length": int(trace.output_tokens[i]),
                    "hash_ids": hashes[off[i]:off[i + 1]],
                }))
                fh.write("\n")


def write_mooncake(trace: Trace, path: Path) -> None:
    write_mooncake_chunks([trace], path)


register_format(TraceFormat("mooncake", read_mooncake, write_mooncake, (".jsonl", ".json"),
                            "Mooncake FAST'25 JSONL (512-token prefix-chained hash_ids)",
                            read_chunks=iter_mooncake, write_chunks=write_mooncake_chunks))
