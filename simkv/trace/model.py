"""The canonical Trace: one columnar representation of a request stream.

Every producer (workload generator, Mooncake/Alibaba/log importers) emits a Trace; every
consumer (cache engine, sizing grid, cost and latency models, harness) reads one.  Requests
are rows of parallel numpy arrays; their block-hash chains are one flat ``uint64`` array cut
by ``block_offsets`` (request ``i`` owns ``block_hashes[block_offsets[i]:block_offsets[i+1]]``).

The chain covers every block of the prompt including a final partial block, as Mooncake's
``hash_ids`` do, so ``n_blocks(i) == ceil(input_tokens[i] / block_tokens)``.  Block ids are
opaque 64-bit values, meaningful only within one trace.  Bytes per block follow each
request's model (KV geometry catalogue), so a trace records model *names*, not sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

#: Per-block tag codes (``block_tags``): which prompt component a block came from.
TAG_NAMES: tuple[str, ...] = ("other", "system", "tools", "document", "history", "user")
TAG_CODES: dict[str, int] = {name: code for code, name in enumerate(TAG_NAMES)}

#: ``model_index`` value for "model unknown" (e.g. Mooncake traces).
NO_MODEL = -1
#: ``session_ids`` / ``tenant_ids`` value for "unknown".
NO_ID = -1


#: More tokens than this in one request is corrupt data (sums would overflow int64).
MAX_TOKENS = 2**40


@dataclass(frozen=True, eq=False)
class Trace:
    """A request trace with prefix-chained block hashes.

    Arrays (length ``n`` = number of requests unless noted):

    - ``arrival_s`` float64, non-decreasing arrival times in seconds from the trace start;
    - ``session_ids`` int64 (``NO_ID`` when unknown); ``tenant_ids`` int32 (``NO_ID``);
    - ``model_index`` int16 into ``models`` (``NO_MODEL`` when unknown);
    - ``input_tokens``, ``output_tokens`` int64;
    - ``block_offsets`` int64, length ``n + 1``;
    - ``block_hashes`` uint64, length ``block_offsets[-1]``: the prefix-chained ids;
    - ``block_tags`` int8 or None, per block, codes of :data:`TAG_NAMES`;
    - ``content_hashes`` uint64 or None, per block: the hash of the block's own tokens,
      unchained (None: unknown, as for importers that only see chained hashes).
    """

    block_tokens: int
    arrival_s: np.ndarray
    session_ids: np.ndarray
    tenant_ids: np.ndarray
    model_index: np.ndarray
    models: tuple[str, ...]
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    block_offsets: np.ndarray
    block_hashes: np.ndarray
    block_tags: np.ndarray | None = None
    content_hashes: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        *,
        block_tokens: int,
        arrival_s,
        input_tokens,
        output_tokens,
        block_offsets,
        block_hashes,
        session_ids=None,
        tenant_ids=None,
        model_index=None,
        models: tuple[str, ...] | list[str] = (),
        block_tags=None,
        content_hashes=None,
        meta: dict[str, Any] | None = None,
        validate: bool = True,
    ) -> Trace:
        """Build a Trace from array-likes, casting dtypes and (by default) validating."""
        n = len(arrival_s)

        def ids(a, dtype):
            return np.full(n, NO_ID, dtype=dtype) if a is None else np.asarray(a, dtype=dtype)

        trace = cls(
            block_tokens=int(block_tokens),
            arrival_s=np.asarray(arrival_s, dtype=np.float64),
            session_ids=ids(session_ids, np.int64),
            tenant_ids=ids(tenant_ids, np.int32),
            model_index=(np.full(n, NO_MODEL, dtype=np.int16) if model_index is None
                         else np.asarray(model_index, dtype=np.int16)),
            models=tuple(models),
            input_tokens=np.asarray(input_tokens, dtype=np.int64),
            output_tokens=np.asarray(output_tokens, dtype=np.int64),
            block_offsets=np.asarray(block_offsets, dtype=np.int64),
            block_hashes=np.asarray(block_hashes, dtype=np.uint64),
            block_tags=None if block_tags is None else np.asarray(block_tags, dtype=np.int8),
            content_hashes=(None if content_hashes is None
                            else np.asarray(content_hashes, dtype=np.uint64)),
            meta=dict(meta or {}),
        )
        if validate:
            trace.validate()
        return trace

    def validate(self) -> None:
        """Raise ValueError if the arrays are inconsistent (a programming error, not input)."""
        n = self.n_requests
        for name in ("session_ids", "tenant_ids", "model_index", "input_tokens", "output_tokens"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Trace.{name} has length {len(getattr(self, name))}, expected {n}")
        if self.block_tokens <= 0:
            raise ValueError("Trace.block_tokens must be > 0")
        if len(self.block_offsets) != n + 1 or (n + 1 and self.block_offsets[0] != 0):
            raise ValueError("Trace.block_offsets must have n+1 entries starting at 0")
        if self.block_offsets[-1] != len(self.block_hashes):
            raise ValueError("Trace.block_offsets[-1] must equal len(block_hashes)")
        if n and not np.all(np.isfinite(self.arrival_s)):
            raise ValueError("Trace.arrival_s must be finite (no NaN or inf)")
        if n and self.arrival_s[0] < 0:
            raise ValueError("Trace.arrival_s must be >= 0")
        if n and np.any(np.diff(self.arrival_s) < 0):
            raise ValueError("Trace.arrival_s must be non-decreasing")
        if np.any(self.input_tokens < 0) or np.any(self.output_tokens < 0):
            raise ValueError("Trace token counts must be >= 0")
        if n and max(int(self.input_tokens.max()), int(self.output_tokens.max())) > MAX_TOKENS:
            raise ValueError(f"Trace token counts must be <= {MAX_TOKENS} per request")
        expected = -(-self.input_tokens // self.block_tokens)
        if not np.array_equal(np.diff(self.block_offsets), expected):
            raise ValueError("every request needs ceil(input_tokens / block_tokens) blocks")
        for name in ("block_tags", "content_hashes"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != len(self.block_hashes):
                raise ValueError(f"Trace.{name} must have one entry per block")
        if self.model_index.size and self.model_index.max(initial=NO_MODEL) >= len(self.models):
            raise ValueError("Trace.model_index points past Trace.models")

    # ------------------------------------------------------------------ views
    @property
    def n_requests(self) -> int:
        return len(self.arrival_s)

    @property
    def n_block_accesses(self) -> int:
        return int(len(self.block_hashes))

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if self.n_requests else 0.0

    @property
    def has_models(self) -> bool:
        return bool(self.models) and bool(np.all(self.model_index >= 0))

    def blocks(self, i: int) -> np.ndarray:
        """Block-hash chain of request ``i``."""
        return self.block_hashes[self.block_offsets[i]:self.block_offsets[i + 1]]

    def block_token_counts(self) -> np.ndarray:
        """Tokens in each block (``block_tokens`` except a request's final partial block)."""
        counts = np.full(len(self.block_hashes), self.block_tokens, dtype=np.int64)
        ends = self.block_offsets[1:]
        nonempty = ends > self.block_offsets[:-1]
        last = ends[nonempty] - 1
        rem = self.input_tokens[nonempty] - (np.diff(self.block_offsets)[nonempty] - 1) * self.block_tokens
        counts[last] = rem
        return counts

    def request_of_block(self) -> np.ndarray:
        """For each block access, the index of its request."""
        return np.repeat(np.arange(self.n_requests, dtype=np.int64), np.diff(self.block_offsets))

    def with_model(self, model: str) -> Trace:
        """The same trace with every request attributed to ``model`` (for Mooncake traces)."""
        out = replace(self, models=(model,), model_index=np.zeros(self.n_requests, dtype=np.int16))
        if "_stream_ids" in self.__dict__:  # the same blocks: a reader's dense ids still hold
            out.__dict__["_stream_ids"] = self.__dict__["_stream_ids"]
        return out

    def head(self, n: int) -> Trace:
        """The first ``n`` requests."""
        return self.select(np.arange(min(n, self.n_requests)))

    def slice(self, a: int, b: int) -> Trace:
        """Requests ``a`` to ``b - 1`` as views of this trace's arrays (no copy): one chunk."""
        a, b = max(0, int(a)), min(int(b), self.n_requests)
        b = max(a, b)
        lo, hi = int(self.block_offsets[a]), int(self.block_offsets[b])
        return replace(
            self,
            arrival_s=self.arrival_s[a:b], session_ids=self.session_ids[a:b],
            tenant_ids=self.tenant_ids[a:b], model_index=self.model_index[a:b],
            input_tokens=self.input_tokens[a:b], output_tokens=self.output_tokens[a:b],
            block_offsets=self.block_offsets[a:b + 1] - lo, block_hashes=self.block_hashes[lo:hi],
            block_tags=None if self.block_tags is None else self.block_tags[lo:hi],
            content_hashes=None if self.content_hashes is None else self.content_hashes[lo:hi],
            meta=self.meta,
        )

    def select(self, rows: np.ndarray) -> Trace:
        """A trace of the given request rows (must be sorted by arrival)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.block_offsets[rows], self.block_offsets[rows + 1]
        lengths = ends - starts
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        take = (np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])).astype(np.int64)
        return replace(
            self,
            arrival_s=self.arrival_s[rows], session_ids=self.session_ids[rows],
            tenant_ids=self.tenant_ids[rows], model_index=self.model_index[rows],
            input_tokens=self.input_tokens[rows], output_tokens=self.output_tokens[rows],
            block_offsets=offsets, block_hashes=self.block_hashes[take],
            block_tags=None if self.block_tags is None else self.block_tags[take],
            content_hashes=None if self.content_hashes is None else self.content_hashes[take],
            meta=dict(self.meta),
        )

    def equals(self, other: Trace) -> bool:
        """Exact equality of every array and field (used by round-trip tests)."""
        if not isinstance(other, Trace):
            return False
        scalars = ("block_tokens", "models")
        if any(getattr(self, s) != getattr(other, s) for s in scalars):
            return False
        for name in ("arrival_s", "session_ids", "tenant_ids", "model_index", "input_tokens",
                     "output_tokens", "block_offsets", "block_hashes", "block_tags",
                     "content_hashes"):
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                return False
            if a is not None and (a.dtype != b.dtype or not np.array_equal(a, b)):
                return False
        return True

    def nbytes(self) -> int:
        """Bytes held by the arrays (for the memory benchmark)."""
        total = 0
        for name in ("arrival_s", "session_ids", "tenant_ids", "model_index", "input_tokens",
                     "output_tokens", "block_offsets", "block_hashes", "block_tags",
                     "content_hashes"):
            a = getattr(self, name)
            if a is not None:
                total += a.nbytes
        return total

    def __repr__(self) -> str:
        return (f"Trace(requests={self.n_requests}, blocks={self.n_block_accesses}, "
                f"block_tokens={self.block_tokens}, models={list(self.models)}, "
                f"duration_s={self.duration_s:.1f})")


def concat_traces(chunks: list[Trace]) -> Trace:
    """One trace from consecutive chunks of the same stream (same block size and models)."""
    if not chunks:
        raise ValueError("no chunks to concatenate")
    first = chunks[0]
    if len(chunks) == 1:
        return first
    shifts = np.cumsum([0] + [c.n_block_accesses for c in chunks[:-1]])
    offsets = np.concatenate([first.block_offsets[:1]]
                             + [c.block_offsets[1:] + s for c, s in zip(chunks, shifts, strict=True)])

    def cat(name: str):
        parts = [getattr(c, name) for c in chunks]
        return None if parts[0] is None else np.concatenate(parts)

    return replace(first, arrival_s=cat("arrival_s"), session_ids=cat("session_ids"),
                   tenant_ids=cat("tenant_ids"), model_index=cat("model_index"),
                   input_tokens=cat("input_tokens"), output_tokens=cat("output_tokens"),
                   block_offsets=offsets.astype(np.int64), block_hashes=cat("block_hashes"),
                   block_tags=cat("block_tags"), content_hashes=cat("content_hashes"),
                   meta=dict(first.meta))
