"""The Parquet trace schema (v2, reads v1): its columns, and the checks a file must pass.

Why apart from the reader and writer: every check of a hostile file (wrong column types,
wrong-typed simkv metadata, unknown versions, torn files) lives in one place that reads no
data, so the chunked reader and the whole-file reader open files through the same gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simkv.errors import InputError
from simkv.validate import Bound, check_number, count

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
SCALAR_COLUMNS = {
    "arrival_s": (pa.float64(), np.float64, "arrival_s"),
    "session_id": (pa.int64(), np.int64, "session_ids"),
    "tenant_id": (pa.int32(), np.int32, "tenant_ids"),
    "model_index": (pa.int16(), np.int16, "model_index"),
    "input_tokens": (pa.int64(), np.int64, "input_tokens"),
    "output_tokens": (pa.int64(), np.int64, "output_tokens"),
}
LIST_COLUMNS = {  # column -> (v1 value type, numpy dtype, Trace attribute)
    "hash_ids": (pa.uint64(), np.uint64, "block_hashes"),
    "block_tags": (pa.int8(), np.int8, "block_tags"),
    "content_hashes": (pa.uint64(), np.uint64, "content_hashes"),
}
V2_CHAIN_COLUMNS = {"block_ids": np.int64, "new_hashes": np.uint64}  # v2's normalised chain
MAX_V2_IDS = 2**31 - 1
OPTIONAL_COLUMNS = ("block_tags", "content_hashes")


def _check_schema(schema: pa.Schema, path: Path, version: int) -> None:
    for name, (typ, _, _) in SCALAR_COLUMNS.items():
        if name not in schema.names:
            raise InputError(f"missing column {name!r}", source=path, where=f"column {name}")
        if schema.field(name).type != typ:
            raise InputError(f"column {name!r} has type {schema.field(name).type}, expected {typ}",
                             source=path, where=f"column {name}")
    required = ("hash_ids",) if version == 1 else tuple(V2_CHAIN_COLUMNS)
    for name in required:
        if name not in schema.names:
            raise InputError(f"missing column {name!r}", source=path, where=f"column {name}")
    for name, (typ, _, _) in LIST_COLUMNS.items():
        if name not in schema.names:
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
    for name in required[1:] if version == 1 else required:
        if not pa.types.is_binary(schema.field(name).type):
            raise InputError(f"column {name!r} has type {schema.field(name).type}, expected "
                             "binary", source=path, where=f"column {name}")


def _meta_int(meta: dict, key: bytes, path: Path, bound: Bound) -> int:
    raw = meta[key]
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"metadata {key.decode()} is not an integer ({raw[:40]!r})",
                         source=path) from None
    return int(check_number(value, bound, f"metadata {key.decode()}", source=path))


def parse_metadata(meta: dict, path: Path) -> tuple[int, int | None, tuple[str, ...], dict]:
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


def open_parquet(path: Path) -> tuple[pq.ParquetFile, int, dict]:
    """The file, its schema version and its simkv header (block_tokens, models, meta)."""
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
    if version_no not in READABLE_VERSIONS:
        raise InputError(f"trace schema version {version_no} is not supported (this simkv reads "
                         f"versions {', '.join(map(str, READABLE_VERSIONS))})", source=path)
    _check_schema(pf.schema_arrow, path, version_no)
    block_tokens, _, models, extra = parse_metadata(meta, path)
    return pf, version_no, {"block_tokens": block_tokens, "models": models, "meta": extra}


def primitive_numpy(arr: pa.Array) -> np.ndarray:
    """A null-free integer or float column as a read-only numpy view of its buffer, as
    ``to_numpy()`` gives it, without pyarrow's ``to_numpy`` importing pandas (about 0.4 s of
    every command's start-up; ``simulate`` needs no pandas)."""
    t = arr.type
    if arr.null_count or not (pa.types.is_integer(t) or pa.types.is_floating(t)):
        return arr.to_numpy(zero_copy_only=False)
    kind = "f" if pa.types.is_floating(t) else "i" if pa.types.is_signed_integer(t) else "u"
    dt = np.dtype(f"{kind}{t.bit_width // 8}")
    return np.frombuffer(arr.buffers()[1], dtype=dt, count=len(arr), offset=arr.offset * dt.itemsize)


def decode_cells(arr: pa.Array, name: str, dt) -> tuple[np.ndarray, np.ndarray]:
    """(per-row value counts, flat values) of a v2 binary column of a batch."""
    if arr.null_count:
        raise ValueError(f"column {name!r} has null entries")
    width = np.dtype(dt).itemsize
    _, obuf, dbuf = arr.buffers()
    loc = np.frombuffer(obuf, dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1].astype(np.int64)
    lengths = np.diff(loc)
    if np.any(lengths % width):
        raise ValueError(f"column {name!r} holds a cell that is not a whole number of values")
    raw = np.frombuffer(dbuf, dtype=np.uint8)[loc[0]:loc[-1]] if dbuf is not None else \
        np.zeros(0, dtype=np.uint8)
    if raw.ctypes.data % width:
        raw = raw.copy()  # an unaligned slice: copy once so numpy and numba can view it
    return lengths // width, raw.view(dt)  # a view: keeps Arrow's buffer alive
