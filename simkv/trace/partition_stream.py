"""A trace partition (``simkv trace partition``) read back as a stream of chunks, in request
order, without rebuilding the whole trace (``shardset.reassemble`` does that, in memory).

The request table is read a row group at a time and cut into chunks of requests; each shard's
dataset is read a row group at a time behind a cursor (its rows are in request order), so a
chunk takes from every shard the rows of its requests and puts each block back at its
position in its request's chain.  Memory: one chunk, plus at most one row group per shard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simkv.errors import InputError
from simkv.trace.model import Trace
from simkv.trace.shardlayout import REQUEST_SCHEMA, REQUESTS_FILE, SHARD_SCHEMA
from simkv.trace.shardset import Partition, open_partition


def _open(path: Path, schema: pa.Schema) -> pq.ParquetFile:
    if not path.exists():
        raise InputError("file missing from the partition", source=path)
    try:
        pf = pq.ParquetFile(str(path), memory_map=False)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0][:200]})",
                         source=path) from None
    if not pf.schema_arrow.equals(schema, check_metadata=False):
        raise InputError("columns do not match the partition schema", source=path)
    return pf


class _ShardCursor:
    """One shard's rows, read a row group at a time, handed out by request range."""

    def __init__(self, path: Path) -> None:
        self.pf = _open(path, SHARD_SCHEMA)
        self.group = 0
        self.requests = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.positions = np.zeros(0, dtype=np.int64)
        self.hashes = np.zeros(0, dtype=np.uint64)

    def _read_group(self) -> None:
        tb = self.pf.read_row_group(self.group, columns=["request", "hash_ids", "positions"],
                                    use_threads=False)
        self.group += 1
        h = tb.column("hash_ids").combine_chunks()
        p = tb.column("positions").combine_chunks()
        loc = np.asarray(h.offsets, dtype=np.int64)
        self.requests = np.concatenate([self.requests, tb.column("request").to_numpy()])
        self.lengths = np.concatenate([self.lengths, np.diff(loc)])
        self.hashes = np.concatenate([self.hashes, h.values.to_numpy()[loc[0]:loc[-1]]])
        ploc = np.asarray(p.offsets, dtype=np.int64)
        self.positions = np.concatenate(
            [self.positions, p.values.to_numpy()[ploc[0]:ploc[-1]].astype(np.int64)])

    def take(self, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(request, blocks per row, positions, hashes) of the rows with request < ``end``."""
        while (not len(self.requests) or self.requests[-1] < end) and \
                self.group < self.pf.metadata.num_row_groups:
            self._read_group()
        rows = int(np.searchsorted(self.requests, end, side="left"))
        blocks = int(self.lengths[:rows].sum())
        out = (self.requests[:rows], self.lengths[:rows], self.positions[:blocks],
               self.hashes[:blocks])
        self.requests, self.lengths = self.requests[rows:], self.lengths[rows:]
        self.positions, self.hashes = self.positions[blocks:], self.hashes[blocks:]
        return out


def iter_partition(folder: str | Path, chunk_requests: int) -> Iterator[Trace]:
    """Consecutive chunks of at most ``chunk_requests`` requests of the partitioned trace."""
    part = open_partition(folder)
    try:
        yield from _chunks(part, chunk_requests)
    except (ValueError, pa.ArrowException, OSError) as exc:
        raise InputError(f"inconsistent partition: {(str(exc).splitlines() or [''])[0][:200]}",
                         source=part.folder) from None


def _chunks(part: Partition, chunk_requests: int) -> Iterator[Trace]:
    req = _open(part.folder / REQUESTS_FILE, REQUEST_SCHEMA)
    if req.metadata.num_rows != part.n_requests:
        raise InputError(f"{req.metadata.num_rows} requests, manifest says {part.n_requests}",
                         source=part.folder / REQUESTS_FILE)
    cursors = [_ShardCursor(part.shard_path(k)) for k in range(part.shards)]
    first = 0
    for g in range(req.metadata.num_row_groups):
        for batch in req.read_row_group(g, use_threads=False).to_batches(chunk_requests):
            cols = {name: batch.column(name).to_numpy() for name in REQUEST_SCHEMA.names}
            end = first + batch.num_rows
            offsets = np.zeros(batch.num_rows + 1, dtype=np.int64)
            np.cumsum(-(-cols["input_tokens"] // part.block_tokens), out=offsets[1:])
            hashes = np.zeros(int(offsets[-1]), dtype=np.uint64)
            filled = np.zeros(len(hashes), dtype=bool)
            for cur in cursors:
                rows, lengths, positions, values = cur.take(end)
                if len(rows) and rows[0] < first:
                    raise ValueError("a shard's rows are out of request order")
                where = offsets[np.repeat(rows - first, lengths)] + positions
                hashes[where] = values
                filled[where] = True
            if not filled.all():
                raise InputError("the shards do not cover every block of the trace",
                                 source=part.folder)
            yield Trace.from_arrays(
                block_tokens=part.block_tokens, arrival_s=cols["arrival_s"],
                session_ids=cols["session_id"], tenant_ids=cols["tenant_id"],
                model_index=cols["model_index"], models=part.models,
                input_tokens=cols["input_tokens"], output_tokens=cols["output_tokens"],
                block_offsets=offsets, block_hashes=hashes, meta=part.meta)
            first = end
