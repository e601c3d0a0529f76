"""Lossless Parquet storage of a Trace (schema v1).

One row per request; the block chain, tags and content hashes are list columns whose offsets
are the Trace's ``block_offsets``.  File metadata carries ``simkv.schema_version``,
``simkv.block_tokens``, ``simkv.n_blocks``, the model names and the trace's ``meta`` as JSON.

Row groups hold at most ``ROW_GROUP_BLOCKS`` blocks, and reading decodes one row group at a
time into arrays preallocated from the metadata, so peak memory stays near the size of the
final arrays however large the file.  Writes are deterministic (no timestamps, fixed
compression): the same trace gives byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simkv import guard
from simkv.errors import InputError
from simkv.trace.formats import TraceFormat, register_format
from simkv.trace.model import Trace
from simkv.validate import Bound, check_number, count

SCHEMA_VERSION = 1
ROW_GROUP_BLOCKS = 1 << 16
_SCALARS = {
    "arrival_s": (pa.float64(), np.float64, "arrival_s"),
    "session_id": (pa.int64(), np.int64, "session_ids"),
    "tenant_id": (pa.int32(), np.int32, "tenant_ids"),
    "model_index": (pa.int16(), np.int16, "model_index"),
    "input_tokens": (pa.int64(), np.int64, "input_tokens"),
    "output_tokens": (pa.int64(), np.int64, "output_tokens"),
}
_LISTS = {  # column -> (value type, numpy dtype, Trace attribute)
    "hash_ids": (pa.uint64(), np.uint64, "block_hashes"),
    "block_tags": (pa.int8(), np.int8, "block_tags"),
    "content_hashes": (pa.uint64(), np.uint64, "content_hashes"),
}


def _row_groups(offsets: np.ndarray) -> list[tuple[int, int]]:
    """Request ranges whose blocks add up to at most ROW_GROUP_BLOCKS (at least one request)."""
    n = len(offsets) - 1
    bounds, start = [], 0
    while start < n:
        stop = int(np.searchsorted(offsets, offsets[start] + ROW_GROUP_BLOCKS, side="right")) - 1
        stop = max(stop, start + 1)
        bounds.append((start, min(stop, n)))
        start = min(stop, n)
    return bounds or [(0, 0)]


def write_parquet(trace: Trace, path: Path) -> None:
    lists = {c: spec for c, spec in _LISTS.items() if getattr(trace, spec[2]) is not None}
    fields = [pa.field(c, t) for c, (t, _, _) in _SCALARS.items()]
    fields += [pa.field(c, pa.list_(t)) for c, (t, _, _) in lists.items()]
    meta = {
        b"simkv.schema_version": str(SCHEMA_VERSION).encode(),
        b"simkv.block_tokens": str(trace.block_tokens).encode(),
        b"simkv.n_blocks": str(trace.n_block_accesses).encode(),
        b"simkv.models": json.dumps(list(trace.models)).encode(),
        b"simkv.meta": json.dumps(trace.meta, sort_keys=True, default=str).encode(),
    }
    schema = pa.schema(fields, metadata=meta)
    off = trace.block_offsets
    with pq.ParquetWriter(str(path), schema, compression="zstd", write_statistics=False) as writer:
        for a, b in _row_groups(off):
            cols = [pa.array(getattr(trace, attr)[a:b], type=t) for t, _, attr in _SCALARS.values()]
            local = (off[a:b + 1] - off[a]).astype(np.int32)
            for t, _, attr in lists.values():
                values = getattr(trace, attr)[off[a]:off[b]]
                cols.append(pa.ListArray.from_arrays(pa.array(local, type=pa.int32()),
                                                     pa.array(values, type=t)))
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))


def _check_schema(schema: pa.Schema, path: Path) -> None:
    for name, (typ, _, _) in _SCALARS.items():
        if name not in schema.names:
            raise InputError(f"missing column {name!r}", source=path, where=f"column {name}")
        if schema.field(name).type != typ:
            raise InputError(f"column {name!r} has type {schema.field(name).type}, expected {typ}",
                             source=path, where=f"column {name}")
    for name, (typ, _, _) in _LISTS.items():
        if name not in schema.names:
            if name == "hash_ids":
                raise InputError("missing column 'hash_ids'", source=path, where="column hash_ids")
            continue
        ft = schema.field(name).type
        if not (pa.types.is_list(ft) or pa.types.is_large_list(ft)) or ft.value_type != typ:
            raise InputError(f"column {name!r} has type {ft}, expected list<{typ}>", source=path,
                             where=f"column {name}")


def _meta_int(meta: dict, key: bytes, path: Path, bound: Bound) -> int:
    raw = meta[key]
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"metadata {key.decode()} is not an integer ({raw[:40]!r})",
                         source=path) from None
    return int(check_number(value, bound, f"metadata {key.decode()}", source=path))


def _metadata(meta: dict, path: Path) -> tuple[int, int | None, tuple[str, ...], dict]:
    """block_tokens, n_blocks, model names and meta from the file metadata, type-checked."""
    if b"simkv.block_tokens" not in meta:
        raise InputError("bad simkv metadata (no simkv.block_tokens)", source=path)
    block_tokens = _meta_int(meta, b"simkv.block_tokens", path, count(1, 2**20))
    n_blocks = (_meta_int(meta, b"simkv.n_blocks", path, count(0, 2**62))
                if b"simkv.n_blocks" in meta else None)
    try:
        models = json.loads(meta.get(b"simkv.models", b"[]"))
        extra = json.loads(meta.get(b"simkv.meta", b"{}"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError
        raise InputError(f"bad simkv metadata ({type(exc).__name__})", source=path) from None
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise InputError("metadata simkv.models must be a JSON list of model names", source=path)
    if not isinstance(extra, dict):
        raise InputError("metadata simkv.meta must be a JSON object", source=path)
    return block_tokens, n_blocks, tuple(models), extra


def read_parquet(path: Path) -> Trace:
    try:
        pf = pq.ParquetFile(str(path), memory_map=False)
        schema = pf.schema_arrow
    # pyarrow's errors on hostile bytes, by name: ArrowInvalid, OSError (torn file) and
    # UnicodeDecodeError (a column name that is not UTF-8)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise InputError(f"not a readable Parquet file ({first})", source=path) from None
    meta = schema.metadata or {}
    version = meta.get(b"simkv.schema_version")
    if version is None:
        raise InputError("not a simkv trace (no simkv.schema_version in the file metadata)", source=path)
    try:
        version_no = int(version)
    except ValueError:
        raise InputError(f"bad simkv.schema_version {version!r}", source=path) from None
    if version_no != SCHEMA_VERSION:
        raise InputError(f"trace schema version {version_no} is not supported (this simkv reads "
                         f"version {SCHEMA_VERSION})", source=path)
    _check_schema(schema, path)
    block_tokens, n_blocks_meta, models, extra = _metadata(meta, path)
    present = [c for c in _LISTS if c in schema.names]
    n = pf.metadata.num_rows
    try:
        n_blocks = n_blocks_meta
        guard.check(guard.trace_bytes(n, n_blocks or 0), f"{path}: a trace of {n:,} requests "
                    f"and {n_blocks or 0:,} blocks (its metadata)")
        scal = {attr: np.empty(n, dtype=dt) for _, dt, attr in _SCALARS.values()}
        offsets = np.zeros(n + 1, dtype=np.int64)
        lists: dict[str, np.ndarray] = {}
        chunks: dict[str, list[np.ndarray]] = {c: [] for c in present}
        row = 0
        for g in range(pf.metadata.num_row_groups):
            tb = pf.read_row_group(g, use_threads=False)
            m = tb.num_rows
            for name, (_, _dt, attr) in _SCALARS.items():
                col = tb.column(name)
                if col.null_count:
                    raise ValueError(f"column {name!r} has nulls")
                scal[attr][row:row + m] = col.to_numpy()
            for name in present:
                arr = tb.column(name).combine_chunks()
                if arr.null_count:
                    raise ValueError(f"column {name!r} has null lists")
                loc = np.asarray(arr.offsets, dtype=np.int64)
                vals = arr.values.to_numpy(zero_copy_only=False)[loc[0]:loc[-1]]
                if name == "hash_ids":
                    offsets[row + 1:row + m + 1] = offsets[row] + (loc[1:] - loc[0])
                    if n_blocks is not None:
                        dest = lists.setdefault(name, np.empty(n_blocks, dtype=np.uint64))
                        a = offsets[row]
                        if a + len(vals) > n_blocks:
                            raise ValueError("more blocks than simkv.n_blocks says")
                        dest[a:a + len(vals)] = vals
                        continue
                chunks[name].append(np.asarray(vals, dtype=_LISTS[name][1]))
            row += m
            del tb
        for name in present:
            if name in lists:
                continue
            dt = _LISTS[name][1]
            lists[name] = np.concatenate(chunks[name]) if chunks[name] else np.zeros(0, dtype=dt)
        return Trace.from_arrays(
            block_tokens=block_tokens, **scal, models=models, block_offsets=offsets,
            block_hashes=lists["hash_ids"], block_tags=lists.get("block_tags"),
            content_hashes=lists.get("content_hashes"), meta=extra,
        )
    except (ValueError, pa.ArrowException, OSError) as exc:  # OSError: a torn row group
        first = (str(exc).splitlines() or [""])[0][:200]
        raise InputError(f"inconsistent trace: {first}", source=path) from None


register_format(TraceFormat("parquet", read_parquet, write_parquet, (".parquet", ".pq"),
                            "simkv's lossless columnar trace (schema v1)"))
