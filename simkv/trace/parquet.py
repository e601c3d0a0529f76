"""Lossless Parquet storage of a Trace (schema v1).

One row per request; the block chain, tags and content hashes are list columns whose offsets
are the Trace's ``block_offsets``, so reading and writing move whole arrays (no per-request
Python).  File metadata carries ``simkv.schema_version``, ``simkv.block_tokens``, the model
names and the trace's ``meta`` as JSON.  Writes are deterministic (no timestamps, fixed
compression) so the same trace gives byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simkv.errors import InputError
from simkv.trace.formats import TraceFormat, register_format
from simkv.trace.model import Trace

SCHEMA_VERSION = 1
_REQUIRED = {
    "arrival_s": pa.float64(), "session_id": pa.int64(), "tenant_id": pa.int32(),
    "model_index": pa.int16(), "input_tokens": pa.int64(), "output_tokens": pa.int64(),
    "hash_ids": pa.list_(pa.uint64()),
}


def _list_array(offsets: np.ndarray, values: np.ndarray, value_type: pa.DataType) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32) if offsets[-1] < 2**31 else offsets,
                                             type=pa.int32() if offsets[-1] < 2**31 else pa.int64()),
                                    pa.array(values, type=value_type))


def write_parquet(trace: Trace, path: Path) -> None:
    off = trace.block_offsets
    if off[-1] >= 2**31:
        cols_list = lambda v, t: pa.LargeListArray.from_arrays(pa.array(off, type=pa.int64()),  # noqa: E731
                                                               pa.array(v, type=t))
    else:
        cols_list = lambda v, t: _list_array(off, v, t)  # noqa: E731
    columns = {
        "arrival_s": pa.array(trace.arrival_s, type=pa.float64()),
        "session_id": pa.array(trace.session_ids, type=pa.int64()),
        "tenant_id": pa.array(trace.tenant_ids, type=pa.int32()),
        "model_index": pa.array(trace.model_index, type=pa.int16()),
        "input_tokens": pa.array(trace.input_tokens, type=pa.int64()),
        "output_tokens": pa.array(trace.output_tokens, type=pa.int64()),
        "hash_ids": cols_list(trace.block_hashes, pa.uint64()),
    }
    if trace.block_tags is not None:
        columns["block_tags"] = cols_list(trace.block_tags, pa.int8())
    if trace.content_hashes is not None:
        columns["content_hashes"] = cols_list(trace.content_hashes, pa.uint64())
    meta = {
        b"simkv.schema_version": str(SCHEMA_VERSION).encode(),
        b"simkv.block_tokens": str(trace.block_tokens).encode(),
        b"simkv.models": json.dumps(list(trace.models)).encode(),
        b"simkv.meta": json.dumps(trace.meta, sort_keys=True, default=str).encode(),
    }
    table = pa.table(columns).replace_schema_metadata(meta)
    pq.write_table(table, str(path), compression="zstd", write_statistics=False,
                   store_schema=True)


def _flat(col: pa.ChunkedArray, dtype) -> tuple[np.ndarray, np.ndarray]:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        raise ValueError("null lists")
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    values = arr.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    values = values[offsets[0]:offsets[-1]]
    return offsets - offsets[0], values


def read_parquet(path: Path) -> Trace:
    try:
        pf = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", source=path) from None
    meta = pf.schema_arrow.metadata or {}
    version = meta.get(b"simkv.schema_version")
    if version is None:
        raise InputError("not a simkv trace (no simkv.schema_version in the file metadata)", source=path)
    if int(version) != SCHEMA_VERSION:
        raise InputError(f"trace schema version {int(version)} is not supported (this simkv reads "
                         f"version {SCHEMA_VERSION})", source=path)
    schema = pf.schema_arrow
    for name, typ in _REQUIRED.items():
        if name not in schema.names:
            raise InputError(f"missing column {name!r}", source=path, where=f"column {name}")
        field_type = schema.field(name).type
        ok = field_type == typ or (pa.types.is_large_list(field_type) and field_type.value_type == typ.value_type) \
            if pa.types.is_list(typ) else field_type == typ
        if not ok:
            raise InputError(f"column {name!r} has type {field_type}, expected {typ}", source=path,
                             where=f"column {name}")
    try:
        block_tokens = int(meta[b"simkv.block_tokens"])
        models = tuple(json.loads(meta.get(b"simkv.models", b"[]")))
        extra = json.loads(meta.get(b"simkv.meta", b"{}"))
    except (KeyError, ValueError) as exc:
        raise InputError(f"bad simkv metadata ({exc})", source=path) from None
    table = pf.read()
    try:
        offsets, hashes = _flat(table.column("hash_ids"), np.uint64)
        tags = content = None
        if "block_tags" in table.column_names:
            _, tags = _flat(table.column("block_tags"), np.int8)
        if "content_hashes" in table.column_names:
            _, content = _flat(table.column("content_hashes"), np.uint64)

        def col(name, dtype):
            c = table.column(name)
            if c.null_count:
                raise ValueError(f"column {name!r} has nulls")
            return c.to_numpy().astype(dtype, copy=False)

        return Trace.from_arrays(
            block_tokens=block_tokens, arrival_s=col("arrival_s", np.float64),
            session_ids=col("session_id", np.int64), tenant_ids=col("tenant_id", np.int32),
            model_index=col("model_index", np.int16), models=models,
            input_tokens=col("input_tokens", np.int64), output_tokens=col("output_tokens", np.int64),
            block_offsets=offsets, block_hashes=hashes, block_tags=tags, content_hashes=content,
            meta=extra,
        )
    except ValueError as exc:
        raise InputError(f"inconsistent trace: {exc}", source=path) from None


register_format(TraceFormat("parquet", read_parquet, write_parquet, (".parquet", ".pq"),
                            "simkv's lossless columnar trace (schema v1)"))
