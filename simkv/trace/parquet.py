"""Lossless Parquet storage of a Trace, read and written chunk by chunk (schema v2; reads v1).

One row per request.  Schema v2 keeps each request's block chain, tags and content hashes as
*binary* cells holding the raw little-endian array (8 bytes per hash, 1 per tag), written
without dictionary encoding: a row group decodes to one flat buffer per column that numpy
views directly, a flat block table beside the request table.  Schema v1 (list columns, which
decode value by value with repetition levels, ~4x slower) is still read.  File metadata
carries ``simkv.schema_version``, ``simkv.block_tokens``, ``simkv.n_blocks``, the model names
and the trace's ``meta`` as JSON.

Reading yields chunks of a given number of requests (``iter_parquet``), decoding only the
columns asked for, so memory is one chunk whatever the file's size.  Writes are deterministic
(no timestamps, fixed compression): the same trace gives byte-identical files however it was
chunked when written (row groups are cut by block count, not by the writer's chunks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simkv.atomicio import atomic_writer
from simkv.errors import InputError
from simkv.trace.formats import TraceFormat, register_format
from simkv.trace.model import Trace, concat_traces

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
ROW_GROUP_BLOCKS = 1 << 20
#: requests per chunk when the caller does not say
DEFAULT_CHUNK_REQUESTS = 1 << 16
_SCALARS = {
    "arrival_s": (pa.float64(), np.float64, "arrival_s"),
    "session_id": (pa.int64(), np.int64, "session_ids"),
    "tenant_id": (pa.int32(), np.int32, "tenant_ids"),
    "model_index": (pa.int16(), np.int16, "model_index"),
    "input_tokens": (pa.int64(), np.int64, "input_tokens"),
    "output_tokens": (pa.int64(), np.int64, "output_tokens"),
}
_LISTS = {  # column -> (v1 value type, numpy dtype, Trace attribute)
    "hash_ids": (pa.uint64(), np.uint64, "block_hashes"),
    "block_tags": (pa.int8(), np.int8, "block_tags"),
    "content_hashes": (pa.uint64(), np.uint64, "content_hashes"),
}
OPTIONAL_COLUMNS = ("block_tags", "content_hashes")


class ParquetTraceWriter:
    """Append chunks of one trace to a v2 file (atomically replaced when closed cleanly)."""

    def __init__(self, path: Path, *, block_tokens: int, models: tuple[str, ...], meta: dict,
                 lists: tuple[str, ...], n_blocks: int | None = None) -> None:
        self.path, self.lists = Path(path), lists
        fields = [pa.field(c, t, nullable=False) for c, (t, _, _) in _SCALARS.items()]
        fields += [pa.field(c, pa.binary(), nullable=False) for c in lists]
        md = {
            b"simkv.schema_version": str(SCHEMA_VERSION).encode(),
            b"simkv.block_tokens": str(block_tokens).encode(),
            b"simkv.models": json.dumps(list(models)).encode(),
            b"simkv.meta": json.dumps(meta, sort_keys=True, default=str).encode(),
        }
        if n_blocks is not None:
            md[b"simkv.n_blocks"] = str(n_blocks).encode()
        self.schema = pa.schema(fields, metadata=md)
        self._pending: list[Trace] = []
        self._pending_blocks = 0

    def __enter__(self) -> ParquetTraceWriter:
        self._ctx = atomic_writer(self.path, "wb")
        fh = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(fh, self.schema, compression="zstd", use_dictionary=False,
                                        write_statistics=False)
        return self

    def write(self, chunk: Trace) -> None:
        """Buffer ``chunk``; full row groups (``ROW_GROUP_BLOCKS`` blocks) go to the file."""
        self._pending.append(chunk)
        self._pending_blocks += chunk.n_block_accesses
        if self._pending_blocks >= ROW_GROUP_BLOCKS:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if not self._pending:
            return
        buf = concat_traces(self._pending)
        off, start, n = buf.block_offsets, 0, buf.n_requests
        while start < n:
            stop = int(np.searchsorted(off, off[start] + ROW_GROUP_BLOCKS, side="right")) - 1
            stop = min(max(stop, start + 1), n)
            if stop == n and not final and off[n] - off[start] < ROW_GROUP_BLOCKS:
                break  # keep the tail for the next row group
            self._writer.write_table(self._table(buf, start, stop))
            start = stop
        self._pending = [buf.slice(start, n)] if start < n else []
        self._pending_blocks = int(off[n] - off[start]) if start < n else 0

    def _table(self, tr: Trace, a: int, b: int) -> pa.Table:
        cols = [pa.array(getattr(tr, attr)[a:b], type=t) for t, _, attr in _SCALARS.values()]
        off = tr.block_offsets
        for c in self.lists:
            values = np.ascontiguousarray(getattr(tr, _LISTS[c][2])[off[a]:off[b]])
            width = values.dtype.itemsize
            offsets = ((off[a:b + 1] - off[a]) * width).astype(np.int32)
            cols.append(pa.BinaryArray.from_buffers(pa.binary(), b - a,
                                                    [None, pa.py_buffer(offsets),
                                                     pa.py_buffer(values.view(np.uint8))]))
        return pa.Table.from_arrays(cols, schema=self.schema)

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self._flush(final=True)
            self._writer.close()
        finally:
            self._ctx.__exit__(*exc)


def write_parquet_chunks(chunks: Iterable[Trace], path: Path) -> None:
    """Write consecutive chunks of one trace (the first fixes block size, models, columns)."""
    it = iter(chunks)
    first = next(it)
    lists = ("hash_ids",) + tuple(c for c in OPTIONAL_COLUMNS
                                  if getattr(first, _LISTS[c][2]) is not None)
    with ParquetTraceWriter(path, block_tokens=first.block_tokens, models=first.models,
                            meta=first.meta, lists=lists) as w:
        w.write(first)
        for chunk in it:
            w.write(chunk)


def write_parquet(trace: Trace, path: Path) -> None:
    write_parquet_chunks([trace], path)


def _check_schema(schema: pa.Schema, path: Path, version: int) -> None:
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
        if version == 1:
            ok = (pa.types.is_list(ft) or pa.types.is_large_list(ft)) and ft.value_type == typ
            want = f"list<{typ}>"
        else:
            ok, want = pa.types.is_binary(ft), "binary"
        if not ok:
            raise InputError(f"column {name!r} has type {ft}, expected {want}", source=path,
                             where=f"column {name}")


def _open(path: Path) -> tuple[pq.ParquetFile, int, dict]:
    """The file, its schema version and its simkv header (block_tokens, models, meta)."""
    try:
        pf = pq.ParquetFile(str(path), memory_map=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", source=path) from None
    meta = pf.schema_arrow.metadata or {}
    version = meta.get(b"simkv.schema_version")
    if version is None:
        raise InputError("not a simkv trace (no simkv.schema_version in the file metadata)", source=path)
    try:
        version_no = int(version)
    except ValueError:
        raise InputError(f"bad simkv.schema_version {version!r}", source=path) from None
    if version_no not in READABLE_VERSIONS:
        raise InputError(f"trace schema version {version_no} is not supported (this simkv reads "
                         f"versions {', '.join(map(str, READABLE_VERSIONS))})", source=path)
    _check_schema(pf.schema_arrow, path, version_no)
    try:
        header = {"block_tokens": int(meta[b"simkv.block_tokens"]),
                  "models": tuple(json.loads(meta.get(b"simkv.models", b"[]"))),
                  "meta": json.loads(meta.get(b"simkv.meta", b"{}"))}
    except (KeyError, ValueError) as exc:
        raise InputError(f"bad simkv metadata ({exc})", source=path) from None
    return pf, version_no, header


def _flat(arr: pa.Array, name: str, version: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-row lengths, flat values) of one list (v1) or binary (v2) column of a batch."""
    if arr.null_count:
        raise ValueError(f"column {name!r} has null entries")
    dt = _LISTS[name][1]
    if version == 1:
        loc = np.asarray(arr.offsets, dtype=np.int64)
        vals = arr.values.to_numpy(zero_copy_only=False)[loc[0]:loc[-1]]
        return np.diff(loc), np.asarray(vals, dtype=dt)
    width = np.dtype(dt).itemsize
    _, obuf, dbuf = arr.buffers()
    loc = np.frombuffer(obuf, dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1].astype(np.int64)
    lengths = np.diff(loc)
    if np.any(lengths % width):
        raise ValueError(f"column {name!r} holds a cell that is not a whole number of values")
    raw = np.frombuffer(dbuf, dtype=np.uint8)[loc[0]:loc[-1]] if dbuf is not None else \
        np.zeros(0, dtype=np.uint8)
    return lengths // width, raw.copy().view(dt)  # copied: aligned, and owns its memory


def iter_parquet(path: Path, chunk_requests: int = DEFAULT_CHUNK_REQUESTS,
                 columns: tuple[str, ...] | None = None) -> Iterator[Trace]:
    """Consecutive chunks of ``chunk_requests`` requests (the last may be shorter).

    ``columns``: which of the optional per-block columns (``block_tags``, ``content_hashes``)
    to decode (default: all the file has); the others come back as None.
    """
    pf, version, header = _open(path)
    names = pf.schema_arrow.names
    present = ["hash_ids"] + [c for c in OPTIONAL_COLUMNS
                              if c in names and (columns is None or c in columns)]
    try:
        for batch in pf.iter_batches(batch_size=chunk_requests, columns=list(_SCALARS) + present,
                                     use_threads=False):
            yield _chunk(batch, version, header, present)
    except (ValueError, pa.ArrowException) as exc:
        raise InputError(f"inconsistent trace: {exc}", source=path) from None


def _chunk(batch: pa.RecordBatch, version: int, header: dict, present: list[str]) -> Trace:
    scal = {}
    for name, (_, _, attr) in _SCALARS.items():
        col = batch.column(name)
        if col.null_count:
            raise ValueError(f"column {name!r} has nulls")
        scal[attr] = col.to_numpy()
    lists, lengths = {}, None
    for name in present:
        n_per_row, vals = _flat(batch.column(name), name, version)
        if lengths is None:
            lengths = n_per_row
        elif not np.array_equal(lengths, n_per_row):
            raise ValueError(f"column {name!r} and hash_ids differ in length")
        lists[_LISTS[name][2]] = vals
    offsets = np.zeros(batch.num_rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Trace.from_arrays(block_tokens=header["block_tokens"], **scal, models=header["models"],
                             block_offsets=offsets, meta=header["meta"], **lists)


def read_parquet(path: Path, columns: tuple[str, ...] | None = None) -> Trace:
    """The whole file as one Trace (the chunks of :func:`iter_parquet`, concatenated)."""
    pf, _, header = _open(path)
    n = max(1, pf.metadata.num_rows)
    chunks = list(iter_parquet(path, chunk_requests=n, columns=columns))
    if not chunks:  # a file with no rows: an empty trace with the file's header
        return Trace.from_arrays(block_tokens=header["block_tokens"], arrival_s=[],
                                 input_tokens=[], output_tokens=[], block_offsets=[0],
                                 block_hashes=[], models=header["models"], meta=header["meta"])
    trace = concat_traces(chunks)
    trace.validate()
    return trace


register_format(TraceFormat("parquet", read_parquet, write_parquet, (".parquet", ".pq"),
                            "simkv's lossless columnar trace (schema v2; reads v1)",
                            read_chunks=iter_parquet, write_chunks=write_parquet_chunks))
