"""Reading a trace partition back (``simkv trace partition`` wrote it; see ``partition.py``).

``open_partition`` validates the folder's manifest; ``read_shard`` loads one shard's dataset
(all a store node, or a SHARDS sample task, needs); ``read_requests`` the per-request columns
the driver uses to recombine; ``reassemble`` rebuilds the whole trace (tests, and exact
answers on traces that fit).  Every error names the folder or file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simkv.atomicio import read_manifest
from simkv.errors import InputError
from simkv.trace.model import Trace
from simkv.trace.shardlayout import (
    PARTITION_KIND,
    PARTITION_VERSION,
    REQUEST_SCHEMA,
    REQUESTS_FILE,
    SHARD_SCHEMA,
    shard_file,
)


@dataclass(frozen=True)
class Partition:
    """A partition folder and what its manifest says."""

    folder: Path
    shards: int
    block_tokens: int
    models: tuple[str, ...]
    n_requests: int
    n_blocks: int
    unique_blocks: int
    meta: dict

    def shard_path(self, k: int) -> Path:
        return self.folder / shard_file(k)


@dataclass(frozen=True)
class ShardData:
    """One shard: per row (a request with blocks here) its fields; flat blocks cut by offsets."""

    requests: np.ndarray     # int64 request index in the whole trace, ascending
    arrival_s: np.ndarray    # float64
    model_index: np.ndarray  # int16
    input_tokens: np.ndarray  # int64 (the whole request's)
    n_blocks: np.ndarray     # int64 (the whole request's)
    offsets: np.ndarray      # int64, rows + 1
    hashes: np.ndarray       # uint64 per block in this shard, in chain order
    positions: np.ndarray    # int64 position of each block in its request's chain


def is_partition(path: str | Path) -> bool:
    """A folder with a manifest.json (``open_partition`` then checks it is a partition)."""
    p = Path(path)
    return p.is_dir() and (p / "manifest.json").exists()


def _whole(body: dict, key: str, src: Path) -> int:
    v = body.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InputError(f"manifest field {key!r} must be a whole number", source=src)
    return v


def open_partition(path: str | Path) -> Partition:
    """The partition in folder ``path`` (InputError if it is not one simkv can read)."""
    folder = Path(path)
    if not is_partition(folder):
        raise InputError("not a trace partition folder (no manifest.json)", source=folder)
    src = folder / "manifest.json"
    body = read_manifest(src)
    if body.get("kind") != PARTITION_KIND:
        raise InputError(f"not a trace partition (manifest kind {body.get('kind')!r})", source=src)
    if body.get("partition_version") != PARTITION_VERSION:
        raise InputError(f"partition version {body.get('partition_version')!r} is not "
                         f"{PARTITION_VERSION}", source=src)
    ints = {k: _whole(body, k, src) for k in ("shards", "block_tokens", "n_requests", "n_blocks",
                                               "unique_blocks")}
    if ints["shards"] < 1 or ints["block_tokens"] < 1:
        raise InputError("manifest needs shards >= 1 and block_tokens >= 1", source=src)
    models = body.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise InputError("manifest field 'models' must be a list of names", source=src)
    meta = body.get("trace_meta") if isinstance(body.get("trace_meta"), dict) else {}
    return Partition(folder=folder, models=tuple(models), meta=meta, **ints)


def _read_table(path: Path, schema: pa.Schema) -> pa.Table:
    try:
        table = pq.read_table(str(path), use_threads=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", source=path) from None
    if not table.schema.equals(schema, check_metadata=False):
        raise InputError("columns do not match the partition schema", source=path)
    return table


def read_shard(part: Partition, k: int) -> ShardData:
    """Shard ``k``'s dataset (only that shard's blocks)."""
    path = part.shard_path(k)
    if not path.exists():
        raise InputError("shard file missing from the partition", source=path)
    tb = _read_table(path, SHARD_SCHEMA)
    h = tb.column("hash_ids").combine_chunks()
    p = tb.column("positions").combine_chunks()
    loc = np.asarray(h.offsets, dtype=np.int64)
    offsets = loc - loc[0]
    return ShardData(
        requests=tb.column("request").to_numpy(), arrival_s=tb.column("arrival_s").to_numpy(),
        model_index=tb.column("model_index").to_numpy(),
        input_tokens=tb.column("input_tokens").to_numpy(), n_blocks=tb.column("n_blocks").to_numpy(),
        offsets=offsets, hashes=h.values.to_numpy()[loc[0]:loc[-1]],
        positions=p.values.to_numpy()[loc[0]:loc[-1]].astype(np.int64))


def read_requests(part: Partition) -> dict[str, np.ndarray]:
    """Every request's scalar columns, by column name."""
    tb = _read_table(part.folder / REQUESTS_FILE, REQUEST_SCHEMA)
    if tb.num_rows != part.n_requests:
        raise InputError(f"{tb.num_rows} requests, manifest says {part.n_requests}",
                         source=part.folder / REQUESTS_FILE)
    return {name: tb.column(name).to_numpy() for name in REQUEST_SCHEMA.names}


def reassemble(part: Partition) -> Trace:
    """The whole trace back from its shards (in memory: for traces that fit)."""
    req = read_requests(part)
    n_blocks = -(-req["input_tokens"] // part.block_tokens)
    offsets = np.zeros(part.n_requests + 1, dtype=np.int64)
    np.cumsum(n_blocks, out=offsets[1:])
    hashes = np.zeros(int(offsets[-1]), dtype=np.uint64)
    filled = np.zeros(int(offsets[-1]), dtype=bool)
    for k in range(part.shards):
        s = read_shard(part, k)
        where = offsets[np.repeat(s.requests, np.diff(s.offsets))] + s.positions
        hashes[where] = s.hashes
        filled[where] = True
    if not filled.all():
        raise InputError("the shards do not cover every block of the trace", source=part.folder)
    return Trace.from_arrays(
        block_tokens=part.block_tokens, arrival_s=req["arrival_s"], session_ids=req["session_id"],
        tenant_ids=req["tenant_id"], model_index=req["model_index"], models=part.models,
        input_tokens=req["input_tokens"], output_tokens=req["output_tokens"],
        block_offsets=offsets, block_hashes=hashes, meta=part.meta)
