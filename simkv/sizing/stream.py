"""The stream the sizing engine walks: dense ids, sizes, per-access tokens, optional sampling.

It is a small frozen bundle of numpy arrays so that an executor can ship it once (Ray's object
store holds numpy arrays without copying) and run independent parts of a grid against it.
Sampling is SHARDS' spatial sampling: an object is kept iff a hash of its block id falls under
``rate``; every access to a kept object is kept, so reuse times are unchanged and stack
distances shrink by ``rate`` in expectation (capacities are scaled down to match).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkv.cache.engine import block_bytes_per_access, resolve_trace_models
from simkv.cache.stream import dense_block_ids, densify
from simkv.errors import InputError
from simkv.hashing import finalize64
from simkv.trace.model import Trace

UNITS = ("blocks", "bytes")
_SAMPLE_BITS = 24


@dataclass(frozen=True)
class SizingStream:
    """Everything a grid part needs; ``unit`` says what ``sizes`` (and capacities) count."""

    ids: np.ndarray          # int64 per access (dense object ids)
    n_objects: int
    sizes: np.ndarray        # int64 per object (1 for blocks, bytes otherwise)
    req_offsets: np.ndarray  # int64, n_requests + 1
    req_time_s: np.ndarray   # float64 per request
    tokens: np.ndarray       # int64 per access: tokens of the block (final partial block counts its own)
    unit: str
    distinct_sizes: np.ndarray  # int64 ascending: the object sizes that occur (size classes)
    sample_rate: float = 1.0

    @property
    def n_accesses(self) -> int:
        return int(self.ids.shape[0])


def spatial_sample_mask(block_hashes: np.ndarray, rate: float, salt: int = 0) -> np.ndarray:
    """SHARDS spatial sampling: True for accesses whose block id hashes under ``rate``."""
    h = finalize64(np.asarray(block_hashes, dtype=np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF))
    threshold = np.uint64(int(round(rate * (1 << _SAMPLE_BITS))))
    return (h >> np.uint64(64 - _SAMPLE_BITS)) < threshold


def prepare_stream(trace: Trace, *, unit: str = "blocks", model: str | None = None,
                   sample_rate: float | None = None, sample_salt: int = 0) -> SizingStream:
    """Dense stream of ``trace`` with sizes in ``unit`` (bytes follow each request's model)."""
    if unit not in UNITS:
        raise InputError(f"unknown capacity unit {unit!r} (valid: {', '.join(UNITS)})", where="unit")
    trace = resolve_trace_models(trace, model)
    weights = block_bytes_per_access(trace) if unit == "bytes" else None
    tokens = trace.block_token_counts()
    offsets = trace.block_offsets
    rate = 1.0
    if sample_rate is not None and sample_rate < 1.0:
        if not 0.0 < sample_rate <= 1.0:
            raise InputError("sample rate must be within (0, 1]", where="--sample-rate")
        # sample before densifying: only the kept objects get ids and per-object state
        rate = float(sample_rate)
        keep = spatial_sample_mask(trace.block_hashes, rate, sample_salt)
        per_req = np.add.reduceat(keep.astype(np.int64), offsets[:-1]) if len(keep) else \
            np.zeros(trace.n_requests, dtype=np.int64)
        per_req = np.where(np.diff(offsets) > 0, per_req, 0)
        offsets = np.zeros(trace.n_requests + 1, dtype=np.int64)
        np.cumsum(per_req, out=offsets[1:])
        ids, n_obj = densify(trace.block_hashes[keep])
        tokens = tokens[keep]
        if weights is not None:
            weights = weights[keep]
    else:
        ids, n_obj = dense_block_ids(trace)
    if weights is None:
        sizes = np.ones(n_obj, dtype=np.int64)
    else:  # an object weighs what its first access weighs, as in simkv.cache.stream
        sizes = np.zeros(n_obj, dtype=np.int64)
        sizes[ids[::-1]] = np.asarray(weights, dtype=np.int64)[::-1]
    if unit == "bytes" and n_obj:
        distinct = np.unique(sizes)
    else:
        distinct = np.ones(1 if n_obj else 0, dtype=np.int64)
    return SizingStream(ids=np.ascontiguousarray(ids), n_objects=int(n_obj),
                        sizes=np.ascontiguousarray(sizes, dtype=np.int64), req_offsets=offsets,
                        req_time_s=np.ascontiguousarray(trace.arrival_s, dtype=np.float64),
                        tokens=np.ascontiguousarray(tokens, dtype=np.int64), unit=unit,
                        distinct_sizes=distinct.astype(np.int64), sample_rate=rate)
