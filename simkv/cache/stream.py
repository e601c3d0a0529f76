"""The one access stream every kernel consumes, carried from chunk to chunk.

Kernels work on dense ``int64`` object ids (0..U-1 in order of first appearance) rather than
64-bit hashes, so per-object state lives in flat arrays instead of hash tables.  A
:class:`BlockStream` maps each chunk of a trace through one growing :class:`~simkv.idmap.IdMap`
(sized by unique blocks, not accesses) and keeps each object's weight (that of its first
access), so the :class:`AccessStream` it hands out for a chunk has ids that continue the
previous chunk's (a v2 Parquet file stores them, so a stream read from it needs no hash
table at all).  The cache engine (``simkv.cache.engine``) and the sizing grid
(``simkv.sizing``) both read it; an in-memory trace is just a stream of one chunk.

Optional SHARDS spatial sampling keeps an object iff a hash of its block id falls under
``rate``; every access to a kept object is kept, so reuse times are unchanged and stack
distances shrink by ``rate`` in expectation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simkv import guard
from simkv.idmap import IdMap
from simkv.idmap import densify as _densify
from simkv.trace.derived import is_whole, stream_ids
from simkv.trace.model import Trace
from simkv.trace.shardlayout import rate_threshold, spatial_hash24

__all__ = ["AccessStream", "BlockStream", "build_stream", "dense_block_ids", "densify",
           "spatial_sample_mask"]


@dataclass(frozen=True)
class AccessStream:
    """One chunk as a kernel sees it: ``ids[j]`` is the object of access j, ``sizes[obj]`` its
    weight for every object seen so far (``n_objects`` of them, earlier chunks included)."""

    ids: np.ndarray          # int64, per block access of this chunk
    n_objects: int           # objects seen up to the end of this chunk
    sizes: np.ndarray        # int64, per object (1 when capacity is counted in blocks)
    req_offsets: np.ndarray  # int64, n_requests + 1 (into ids)
    req_time_s: np.ndarray   # float64, per request
    tokens: np.ndarray | None = None  # int64 per access: tokens of the block (when asked for)
    n_before: int = 0        # objects seen before this chunk (ids >= n_before are new here)
    sample_rate: float = 1.0

    @property
    def n_accesses(self) -> int:
        return int(self.ids.shape[0])

    def seen_before(self) -> np.ndarray:
        """Per access: 1 if its object occurred in an earlier access (of any chunk), else 0."""
        if not len(self.ids):
            return np.zeros(0, dtype=np.uint8)
        prior = np.maximum.accumulate(np.concatenate(([self.n_before - 1], self.ids[:-1])))
        return (self.ids <= prior).astype(np.uint8)


def spatial_sample_mask(block_hashes: np.ndarray, rate: float, salt: int = 0) -> np.ndarray:
    """SHARDS spatial sampling: True for accesses whose block id hashes under ``rate``.

    The hash is the one store shards are placed by (``simkv.trace.shardlayout``), so shard 0
    of ``K`` is exactly the sample at rate ``1/K``."""
    return spatial_hash24(block_hashes, salt) < np.uint64(rate_threshold(rate))


Weigh = Callable[[Trace], np.ndarray]


class BlockStream:
    """Maps chunk after chunk to an :class:`AccessStream`, carrying ids and sizes.

    ``content``: key by content hash (chunk reuse) instead of chained hash; ``weigh``: per
    access weights of a chunk (None weighs every object 1); ``tokens``: also give each access
    its block's tokens; ``sample_rate`` < 1: SHARDS sampling before mapping, so only kept
    objects get ids and state.
    """

    def __init__(self, *, content: bool = False, weigh: Weigh | None = None,
                 tokens: bool = False, sample_rate: float = 1.0, sample_salt: int = 0) -> None:
        self.content, self.weigh, self.want_tokens = content, weigh, tokens
        self.sample_rate, self.sample_salt = float(sample_rate), int(sample_salt)
        self.idmap = IdMap()
        self._sizes = np.ones(1024, dtype=np.int64)
        self.n_accesses = 0
        self._known: int | None = None  # set when the ids come from the reader (v2 Parquet)

    @property
    def n_objects(self) -> int:
        return self.idmap.n_ids if self._known is None else self._known

    def _ids(self, chunk: Trace, keys: np.ndarray) -> np.ndarray:
        """Dense ids of the chunk's keys: the reader's own when it has them (chained hashes,
        no sampling, the stream read from its start), else through the id map."""
        pre = None
        if not self.content and self.sample_rate >= 1.0:
            pre = stream_ids(chunk)
            if pre is None and is_whole(chunk) and self._known is None and self.idmap.n_ids == 0:
                ids, n = dense_block_ids(chunk)  # computed once per Trace object, then cached
                pre = (ids, 0, n)
        if self._known is None and self.idmap.n_ids == 0 and pre is not None and pre[1] == 0:
            self._known = 0
        if self._known is None:
            return self.idmap.map(keys)
        if pre is None or pre[1] != self._known:
            raise ValueError("a stream begun on a reader's dense ids must continue with them")
        self._known = pre[2]
        return pre[0]

    @property
    def sizes(self) -> np.ndarray:
        return self._sizes[:self.n_objects]

    def feed(self, chunk: Trace) -> AccessStream:
        keys = chunk.content_hashes if self.content else chunk.block_hashes
        if keys is None:
            raise ValueError("trace has no content hashes")
        offsets = chunk.block_offsets
        weights = None if self.weigh is None else np.asarray(self.weigh(chunk), dtype=np.int64)
        tokens = chunk.block_token_counts() if self.want_tokens else None
        if self.sample_rate < 1.0:
            keep = spatial_sample_mask(chunk.block_hashes, self.sample_rate, self.sample_salt)
            csum = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
            offsets = csum[offsets]
            keys = keys[keep]
            weights = None if weights is None else weights[keep]
            tokens = None if tokens is None else tokens[keep]
        n_before = self.n_objects
        ids = self._ids(chunk, keys)
        n_after = self.n_objects
        if n_after > self._sizes.shape[0]:
            grown = np.ones(max(n_after, 2 * self._sizes.shape[0]), dtype=np.int64)
            grown[:n_before] = self._sizes[:n_before]
            self._sizes = grown
        if weights is not None and n_after > n_before:
            new = ids >= n_before  # an object weighs what its first access weighs
            self._sizes[ids[new][::-1]] = weights[new][::-1]
        self.n_accesses += len(ids)
        return AccessStream(ids=ids, n_objects=n_after, sizes=self.sizes,
                            req_offsets=np.ascontiguousarray(offsets, dtype=np.int64),
                            req_time_s=np.ascontiguousarray(chunk.arrival_s, dtype=np.float64),
                            tokens=tokens, n_before=n_before, sample_rate=self.sample_rate)


#: Peak bytes of densify per key: 8 of output ids and at most 40 of table (12-byte slots, the
#: table doubled at 60% load so never under 30% full when every key is new)
ID_MAP_BYTES_PER_KEY = 48


def densify(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids (first-appearance order) of a whole array of keys, and how many; refused by
    ``simkv.guard`` (--max-memory) when its worst case does not fit."""
    keys = np.asarray(keys)
    guard.check(keys.size * ID_MAP_BYTES_PER_KEY, f"the id map of {keys.size:,} block accesses")
    return _densify(keys)


def dense_block_ids(trace: Trace) -> tuple[np.ndarray, int]:
    """Dense ids of ``trace.block_hashes``, computed once and cached on the trace object."""
    cache = trace.__dict__.setdefault("_derived", {})
    if "dense" not in cache:
        cache["dense"] = densify(trace.block_hashes)
    return cache["dense"]


def build_stream(trace: Trace, block_sizes: np.ndarray | None, *, content: bool = False) -> AccessStream:
    """The whole of ``trace`` as one chunk (chained or content hashes; per-access weights)."""
    weigh = None if block_sizes is None else (lambda _chunk: block_sizes)
    return BlockStream(content=content, weigh=weigh).feed(trace)
