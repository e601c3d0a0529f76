"""The layout of a trace partition: which shard a block lives on, and what each file holds.

Kept apart from the writer (``partition.py``) and the reader (``shardset.py``) so that SHARDS
sampling (``simkv.sizing.stream``) and store shards share the one placement rule without
pulling in either.  A block lives on shard ``k`` of ``K`` when ``spatial_hash24`` (the top 24
bits of ``simkv.hashing.finalize64``, the splitmix64 finaliser) falls in
``[round(k/K * 2^24), round((k+1)/K * 2^24))``; shard 0 of ``K`` is the SHARDS sample at
rate ``1/K``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from simkv.hashing import finalize64

HASH_BITS = 24
PARTITION_KIND = "simkv-trace-partition"
PARTITION_VERSION = 1
REQUESTS_FILE = "requests.parquet"

REQUEST_SCHEMA = pa.schema([
    ("arrival_s", pa.float64()), ("session_id", pa.int64()), ("tenant_id", pa.int32()),
    ("model_index", pa.int16()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
])
SHARD_SCHEMA = pa.schema([
    ("request", pa.int64()), ("arrival_s", pa.float64()), ("model_index", pa.int16()),
    ("input_tokens", pa.int64()), ("n_blocks", pa.int64()),
    ("hash_ids", pa.list_(pa.uint64())), ("positions", pa.list_(pa.int32())),
])


def spatial_hash24(block_hashes: np.ndarray, salt: int = 0) -> np.ndarray:
    """The 24-bit spatial hash of each block (uniform over ``[0, 2^24)``)."""
    h = finalize64(np.asarray(block_hashes, dtype=np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF))
    return h >> np.uint64(64 - HASH_BITS)


def rate_threshold(rate: float) -> int:
    """Hash values below this form the SHARDS sample at ``rate``."""
    return int(round(rate * (1 << HASH_BITS)))


def shard_bounds(shards: int) -> np.ndarray:
    """``shards + 1`` ascending hash bounds; shard ``k`` holds ``[b[k], b[k+1])``."""
    # the same float arithmetic as rate_threshold(k / shards), vectorised (rint: half to even)
    return np.rint((np.arange(shards + 1) / shards) * float(1 << HASH_BITS)).astype(np.int64)


def shard_of(block_hashes: np.ndarray, shards: int) -> np.ndarray:
    """The shard (0..shards-1) each block lives on."""
    h = spatial_hash24(block_hashes).astype(np.int64)
    return np.searchsorted(shard_bounds(shards), h, side="right") - 1


def shard_file(k: int) -> str:
    return f"shard-{k:05d}.parquet"

