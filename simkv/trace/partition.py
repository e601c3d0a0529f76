"""``simkv trace partition``: one dataset per store shard, written once, in bounded memory.

A distributed KV store (Mooncake Store, LMCache P2P / remote, Redis Cluster) places each
block on one node by its key.  simkv models that with a *spatial hash* of the block hash:
``spatial_hash24`` (the top 24 bits of ``simkv.hashing.finalize64``, the splitmix64
finaliser: the same hash SHARDS sampling keeps or drops a block by,
``simkv.sizing.stream.spatial_sample_mask``) and ``K`` contiguous
ranges of it (``shard_bounds``).  Shard 0 of ``K`` is therefore exactly the SHARDS sample at
rate ``1/K``, and any shard is a spatial sample of that rate.

The partition is a folder: ``requests.parquet`` (every request's scalar columns, in order),
``shard-NNNNN.parquet`` per shard (per request that has blocks in the shard: its request
index, arrival time, model, input tokens, block count, and only that shard's block hashes
with their positions in the request's chain, which is what recombining per request needs)
and ``manifest.json`` (simkv's one manifest format).  The input is read in chunks (Parquet
row groups, JSONL lines), so no step holds the whole trace; at most ``MAX_OPEN_SHARDS``
shard files are open at once (more shards take more passes over the input).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simkv.atomicio import atomic_writer, owned_files, sha256_file, write_manifest
from simkv.errors import InputError
from simkv.trace.chunks import iter_trace_chunks
from simkv.trace.model import Trace
from simkv.trace.shardlayout import (
    PARTITION_KIND,
    PARTITION_VERSION,
    REQUEST_SCHEMA,
    REQUESTS_FILE,
    SHARD_SCHEMA,
    shard_bounds,
    shard_file,
    spatial_hash24,
)

MAX_OPEN_SHARDS = 256
DEFAULT_CHUNK_REQUESTS = 65536


def _request_table(chunk: Trace) -> pa.Table:
    cols = [chunk.arrival_s, chunk.session_ids, chunk.tenant_ids, chunk.model_index,
            chunk.input_tokens, chunk.output_tokens]
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, REQUEST_SCHEMA,
                                                                          strict=True)],
                                schema=REQUEST_SCHEMA)


def _shard_table(chunk: Trace, first: int, blocks: np.ndarray) -> pa.Table:
    """Rows for the chunk's requests that own some of ``blocks`` (ascending block indices)."""
    req_of = np.searchsorted(chunk.block_offsets, blocks, side="right") - 1
    rows, counts = np.unique(req_of, return_counts=True)
    local = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(counts, out=local[1:])
    positions = (blocks - chunk.block_offsets[req_of]).astype(np.int32)
    n_blocks = np.diff(chunk.block_offsets)[rows]
    offs = pa.array(local, type=pa.int32())
    cols = [pa.array(rows + first, type=pa.int64()), pa.array(chunk.arrival_s[rows]),
            pa.array(chunk.model_index[rows], type=pa.int16()),
            pa.array(chunk.input_tokens[rows], type=pa.int64()), pa.array(n_blocks, type=pa.int64()),
            pa.ListArray.from_arrays(offs, pa.array(chunk.block_hashes[blocks], type=pa.uint64())),
            pa.ListArray.from_arrays(offs, pa.array(positions, type=pa.int32()))]
    return pa.Table.from_arrays(cols, schema=SHARD_SCHEMA)


class _UniqueCounter:
    """Distinct block hashes seen so far, merged lazily (amortised doubling): O(unique) memory."""

    def __init__(self) -> None:
        self._merged = np.zeros(0, dtype=np.uint64)
        self._pending: list[np.ndarray] = []
        self._pending_len = 0

    def add(self, hashes: np.ndarray) -> None:
        u = np.unique(hashes)
        self._pending.append(u)
        self._pending_len += len(u)
        if self._pending_len > max(len(self._merged), 1 << 16):
            self._merge()

    def _merge(self) -> None:
        self._merged = np.unique(np.concatenate([self._merged, *self._pending]))
        self._pending, self._pending_len = [], 0

    def count(self) -> int:
        self._merge()
        return int(len(self._merged))


def _prepare_out(out_dir: Path, force: bool) -> None:
    """Refuse a folder holding anything simkv did not write there (or anything, without --force)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a folder", source=out_dir, where="--out")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not force:
            raise InputError("folder is not empty; refusing to overwrite (give --force to replace "
                             "a partition simkv wrote)", source=out_dir, where="--out")
        owned = {p.resolve() for p in owned_files(out_dir)} | {(out_dir / "manifest.json").resolve()}
        foreign = [p for p in out_dir.iterdir() if p.resolve() not in owned]
        if foreign:
            raise InputError(f"holds {foreign[0].name}, which simkv did not write; refusing to "
                             "replace it", source=out_dir, where="--out")
        for p in owned:
            p.unlink(missing_ok=True)
    if not out_dir.parent.is_dir():
        raise InputError("parent folder does not exist", source=out_dir, where="--out")
    out_dir.mkdir(exist_ok=True)


def _write_pass(path: Path, fmt: str | None, chunk_requests: int, out_dir: Path, shards: int,
                batch: range, first_pass: bool, option: str) -> dict:
    """One pass over the input writing the shards in ``batch`` (and, first, the request table)."""
    stats = {"n_requests": 0, "n_blocks": 0, "block_tokens": None, "models": (), "meta": {}}
    counter = _UniqueCounter() if first_pass else None
    bounds = shard_bounds(shards)
    with contextlib.ExitStack() as stack:
        writers = {}
        for k in batch:
            fh = stack.enter_context(atomic_writer(out_dir / shard_file(k)))
            writers[k] = stack.enter_context(pq.ParquetWriter(fh, SHARD_SCHEMA, compression="zstd",
                                                              write_statistics=False))
        req_writer = None
        if first_pass:
            fh = stack.enter_context(atomic_writer(out_dir / REQUESTS_FILE))
            req_writer = stack.enter_context(pq.ParquetWriter(fh, REQUEST_SCHEMA, compression="zstd",
                                                              write_statistics=False))
        for first, chunk in iter_trace_chunks(path, fmt, chunk_requests):
            stats.update(block_tokens=chunk.block_tokens, models=chunk.models, meta=chunk.meta)
            stats["n_requests"] += chunk.n_requests
            stats["n_blocks"] += chunk.n_block_accesses
            if req_writer is not None:
                req_writer.write_table(_request_table(chunk))
            if counter is not None:
                counter.add(chunk.block_hashes)
            h = spatial_hash24(chunk.block_hashes).astype(np.int64)
            lo, hi = bounds[batch.start], bounds[batch.stop]
            sel = np.flatnonzero((h >= lo) & (h < hi))
            if not len(sel):
                continue
            sh = np.searchsorted(bounds, h[sel], side="right") - 1
            order = np.argsort(sh, kind="stable")
            sel, sh = sel[order], sh[order]
            cuts = np.searchsorted(sh, np.arange(batch.start, batch.stop + 1))
            for i, k in enumerate(batch):
                if cuts[i + 1] > cuts[i]:
                    writers[k].write_table(_shard_table(chunk, first, sel[cuts[i]:cuts[i + 1]]))
        if counter is not None:
            stats["unique_blocks"] = counter.count()
            if shards > stats["unique_blocks"]:
                # raising inside the writers' context removes every file of this pass
                raise InputError(f"{shards} shards is more than the trace's "
                                 f"{stats['unique_blocks']} unique blocks", where=option)
    return stats


def partition_trace(path: str | Path, shards: int, out_dir: str | Path, *, format: str | None = None,
                    chunk_requests: int = DEFAULT_CHUNK_REQUESTS, force: bool = False,
                    option: str = "--shards") -> dict:
    """Write the partition of the trace at ``path`` into ``out_dir``; returns its manifest.

    ``option`` names the shard count in errors (``--shards``, or ``--store-shards`` when
    ``simulate`` partitions on the fly)."""
    path, out_dir = Path(path), Path(out_dir)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise InputError(f"must be a whole number >= 1, got {shards!r}", where=option)
    if chunk_requests < 1:
        raise InputError("must be >= 1", where="--chunk-requests")
    if out_dir.resolve() == path.resolve():
        raise InputError("is the input trace", source=out_dir, where="--out")
    created = not out_dir.exists()
    _prepare_out(out_dir, force)
    stats: dict = {}
    done = 0  # shards whose files are complete (a failing pass removes its own files)
    try:
        for start in range(0, shards, MAX_OPEN_SHARDS):
            batch = range(start, min(start + MAX_OPEN_SHARDS, shards))
            s = _write_pass(path, format, chunk_requests, out_dir, shards, batch, start == 0,
                            option)
            stats = stats or s
            done = batch.stop
    except InputError:
        for k in range(done):
            (out_dir / shard_file(k)).unlink(missing_ok=True)
        (out_dir / REQUESTS_FILE).unlink(missing_ok=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    names = [REQUESTS_FILE] + [shard_file(k) for k in range(shards)]
    files = {n: sha256_file(out_dir / n) for n in names}
    return write_manifest(
        out_dir / "manifest.json", PARTITION_KIND, files, partition_version=PARTITION_VERSION,
        shards=shards, hash="splitmix64 finaliser, top 24 bits; shard k = [round(k/K*2^24), "
        "round((k+1)/K*2^24))", block_tokens=stats["block_tokens"], models=list(stats["models"]),
        n_requests=stats["n_requests"], n_blocks=stats["n_blocks"],
        unique_blocks=stats["unique_blocks"], source=path.name, trace_meta=stats["meta"])
