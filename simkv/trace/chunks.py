"""Reading a trace file as consecutive chunks of whole requests (what ``trace partition`` reads).

Parquet is read one row group at a time and Mooncake JSONL line by line, so memory holds one
chunk; other formats (importers) are read whole and cut.  Each chunk is a validated Trace;
``iter_trace_chunks`` also yields the index of the chunk's first request in the whole trace.
(The streaming work of issue 15 adds ``simkv.trace.stream.TraceSource.chunks``; this module
is the partitioner's reader until that lands, and should then defer to it.)
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simkv.errors import InputError
from simkv.trace.formats import guess_format, load_trace
from simkv.trace.jsonl import extend_hash_ids, int_field, json_lines, time_field
from simkv.trace.model import Trace
from simkv.trace.mooncake import MOONCAKE_BLOCK_TOKENS
from simkv.trace.parquet import SCHEMA_VERSION

#: Parquet column -> Trace attribute (schema v1, as ``simkv.trace.parquet`` writes it)
SCALAR_COLUMNS = {"arrival_s": "arrival_s", "session_id": "session_ids", "tenant_id": "tenant_ids",
                  "model_index": "model_index", "input_tokens": "input_tokens",
                  "output_tokens": "output_tokens"}


def _parquet_chunks(path: Path) -> Iterator[Trace]:
    try:
        pf = pq.ParquetFile(str(path), memory_map=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", source=path) from None
    meta = pf.schema_arrow.metadata or {}
    if meta.get(b"simkv.schema_version") != str(SCHEMA_VERSION).encode():
        raise InputError(f"not a simkv trace of schema version {SCHEMA_VERSION}", source=path)
    for name in (*SCALAR_COLUMNS, "hash_ids"):
        if name not in pf.schema_arrow.names:
            raise InputError(f"missing column {name!r}", source=path, where=f"column {name}")
    try:
        block_tokens = int(meta[b"simkv.block_tokens"])
        models = tuple(json.loads(meta.get(b"simkv.models", b"[]")))
        extra = json.loads(meta.get(b"simkv.meta", b"{}"))
    except (KeyError, ValueError) as exc:
        raise InputError(f"bad simkv metadata ({exc})", source=path) from None
    lists = [c for c in ("hash_ids", "block_tags", "content_hashes") if c in pf.schema_arrow.names]
    for g in range(pf.metadata.num_row_groups):
        try:
            tb = pf.read_row_group(g, use_threads=False)
            scal = {attr: tb.column(name).to_numpy() for name, attr in SCALAR_COLUMNS.items()}
            vals = {}
            offsets = None
            for name in lists:
                arr = tb.column(name).combine_chunks()
                loc = np.asarray(arr.offsets, dtype=np.int64)
                vals[name] = arr.values.to_numpy(zero_copy_only=False)[loc[0]:loc[-1]]
                offsets = loc - loc[0] if name == "hash_ids" else offsets
            yield Trace.from_arrays(block_tokens=block_tokens, **scal, models=models,
                                    block_offsets=offsets, block_hashes=vals["hash_ids"],
                                    block_tags=vals.get("block_tags"),
                                    content_hashes=vals.get("content_hashes"), meta=extra)
        except (ValueError, pa.ArrowException) as exc:
            raise InputError(f"inconsistent trace in row group {g}: {exc}", source=path) from None


def _mooncake_chunks(path: Path, chunk_requests: int) -> Iterator[Trace]:
    meta = {"source_format": "mooncake", "source_file": path.name}
    last_ts = -np.inf

    def fresh():
        return array("d"), array("q"), array("q"), array("q", [0]), array("Q")

    ts, inp, out, offsets, hashes = fresh()

    def emit() -> Trace:
        return Trace.from_arrays(block_tokens=MOONCAKE_BLOCK_TOKENS, arrival_s=np.frombuffer(ts),
                                 input_tokens=np.frombuffer(inp, dtype=np.int64),
                                 output_tokens=np.frombuffer(out, dtype=np.int64),
                                 block_offsets=np.frombuffer(offsets, dtype=np.int64),
                                 block_hashes=np.frombuffer(hashes, dtype=np.uint64), meta=meta)

    for lineno, obj in json_lines(path):
        t = time_field(obj, "timestamp", path, lineno, "ms")
        if t < last_ts:
            raise InputError(f"timestamps must not decrease ({t} after {last_ts})", source=path,
                             where=f"line {lineno}")
        last_ts = t
        n_in = int_field(obj, "input_length", path, lineno)
        n_out = int_field(obj, "output_length", path, lineno)
        extend_hash_ids(hashes, obj, n_in, MOONCAKE_BLOCK_TOKENS, path, lineno)
        ts.append(t / 1000.0)
        inp.append(n_in)
        out.append(n_out)
        offsets.append(len(hashes))
        if len(ts) >= chunk_requests:
            yield emit()
            ts, inp, out, offsets, hashes = fresh()
    if last_ts == -np.inf:
        raise InputError("trace has no requests", source=path)
    if len(ts):
        yield emit()


def iter_trace_chunks(path: Path, format: str | None, chunk_requests: int) -> Iterator[tuple[int, Trace]]:
    """(index of the chunk's first request, chunk) for consecutive chunks of the trace file."""
    if not path.exists():
        raise InputError("trace file not found", source=path)
    if path.is_dir():
        raise InputError("is a directory, not a trace file", source=path)
    fmt = format or guess_format(path)
    if fmt == "parquet":
        chunks = _parquet_chunks(path)
    elif fmt == "mooncake":
        chunks = _mooncake_chunks(path, chunk_requests)
    else:
        whole = load_trace(path, fmt)
        chunks = (whole.select(np.arange(a, min(a + chunk_requests, whole.n_requests)))
                  for a in range(0, whole.n_requests, chunk_requests))
    first, last_t = 0, -np.inf
    for chunk in chunks:
        if chunk.n_requests and chunk.arrival_s[0] < last_t:
            raise InputError(f"arrival times decrease at request {first}", source=path)
        last_t = chunk.arrival_s[-1] if chunk.n_requests else last_t
        yield first, chunk
        first += chunk.n_requests
