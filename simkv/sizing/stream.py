"""The stream the sizing engine walks: dense ids, sizes, per-access tokens, optional sampling.

Built on the one access stream (``simkv.cache.stream.BlockStream``): the streaming grid feeds
it chunk by chunk; :func:`prepare_stream` gives the whole trace as one chunk, a small frozen
bundle of numpy arrays that an executor can ship once (Ray's object store holds numpy arrays
without copying) to run independent parts of a grid against it.  Sampling is SHARDS' spatial
sampling (``simkv.cache.stream.spatial_sample_mask``), applied before ids are assigned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simkv.cache.engine import block_bytes_per_access, resolve_trace_models
from simkv.cache.stream import BlockStream, spatial_sample_mask
from simkv.errors import InputError
from simkv.models.geometry import get_model
from simkv.trace.model import Trace

__all__ = ["UNITS", "SizingStream", "prepare_stream", "sizing_block_stream", "possible_sizes",
           "spatial_sample_mask"]
UNITS = ("blocks", "bytes")


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
    distinct_sizes: np.ndarray  # int64 ascending: the object sizes that may occur (size classes)
    sample_rate: float = 1.0

    @property
    def n_accesses(self) -> int:
        return int(self.ids.shape[0])


def check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise InputError(f"unknown capacity unit {unit!r} (valid: {', '.join(UNITS)})", where="unit")


def check_rate(sample_rate: float | None) -> float:
    if sample_rate is None or sample_rate >= 1.0:
        return 1.0
    if not sample_rate > 0.0:
        raise InputError("sample rate must be within (0, 1]", where="--sample-rate")
    return float(sample_rate)


def possible_sizes(chunk: Trace, unit: str) -> np.ndarray:
    """Ascending object sizes the stream can have (per model of the trace's header), known
    before reading it: the size classes a grid plans its passes by."""
    if unit == "blocks":
        return np.ones(1, dtype=np.int64)
    if not chunk.has_models:
        block_bytes_per_access(chunk)  # raises the "give --model" error
    per_model = [get_model(m).block_bytes(chunk.block_tokens) for m in chunk.models]
    return np.unique(np.array(per_model, dtype=np.int64))


def sizing_block_stream(unit: str, sample_rate: float | None, sample_salt: int) -> BlockStream:
    """The access stream a grid reads: chained hashes, tokens, weights in ``unit``."""
    check_unit(unit)
    weigh = block_bytes_per_access if unit == "bytes" else None
    return BlockStream(weigh=weigh, tokens=True, sample_rate=check_rate(sample_rate),
                       sample_salt=sample_salt)


def prepare_stream(trace: Trace, *, unit: str = "blocks", model: str | None = None,
                   sample_rate: float | None = None, sample_salt: int = 0) -> SizingStream:
    """The whole of ``trace`` as one chunk, sizes in ``unit`` (bytes follow each request's model)."""
    bs = sizing_block_stream(unit, sample_rate, sample_salt)
    trace = resolve_trace_models(trace, model)
    chunk = bs.feed(trace)
    if unit == "bytes" and chunk.n_objects:
        distinct = np.unique(chunk.sizes)
    else:
        distinct = np.ones(1 if chunk.n_objects else 0, dtype=np.int64)
    return SizingStream(ids=chunk.ids, n_objects=chunk.n_objects,
                        sizes=np.ascontiguousarray(chunk.sizes, dtype=np.int64),
                        req_offsets=chunk.req_offsets, req_time_s=chunk.req_time_s,
                        tokens=chunk.tokens, unit=unit, distinct_sizes=distinct.astype(np.int64),
                        sample_rate=chunk.sample_rate)
