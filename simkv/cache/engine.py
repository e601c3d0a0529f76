"""The exact block-cache engine: Trace + CacheConfig -> per-request records and a summary.

Prefix semantics: every block of a request is touched in chain order; a request's prefix hit
is the leading run of cached blocks.  ``chunk`` reuse keys the cache by content hash: any
cached block whose content matches is reused; the leading run of such blocks whose chained
hash was also seen before counts as an exact prefix hit, and the rest is position-independent
reuse of which ``blend_recompute_share`` is recomputed (CacheBlend-style).  Hit tokens count a final partial block by its own
tokens.  The clock is each request's arrival time: simulated time only.

The engine reads a trace as a stream of chunks (``simkv.trace.stream``): ids, cache state and
the summary's sums carry over from chunk to chunk, so memory is the per-block state plus one
chunk, and the result is the same for any chunk size.  ``simulate(trace)`` on an in-memory
trace is the same path with one chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from simkv.cache.config import CacheConfig
from simkv.cache.kernels import prefix_runs
from simkv.cache.policies import POLICIES, KernelOutput
from simkv.cache.stream import AccessStream, BlockStream
from simkv.errors import InputError
from simkv.models.geometry import ModelSpec, get_model
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource

if TYPE_CHECKING:  # pandas is imported where records are built: a summary-only run (the
    import pandas as pd  # `simulate` command) starts ~0.4 s sooner without it


def resolve_trace_models(trace: Trace, model: str | ModelSpec | None) -> Trace:
    """Attach ``model`` to a trace that has none (or one); refuse it on a multi-model trace."""
    if model is None:
        return trace
    name = model.name if isinstance(model, ModelSpec) else str(model)
    if len(set(trace.models)) > 1:
        raise InputError("this trace names several models; each request's own model is used, "
                         "so --model is refused", where="--model")
    return trace.with_model(name)


def block_bytes_per_access(trace: Trace, specs: dict[str, ModelSpec] | None = None) -> np.ndarray:
    """Bytes each block access weighs, from its request's model (KV geometry catalogue)."""
    if not trace.has_models:
        raise InputError("the trace names no model, so capacity in bytes is undefined: "
                         "give --model NAME (or count capacity in blocks)", where="--model")
    specs = specs or {}
    per_model = np.array([
        (specs.get(m) or get_model(m)).block_bytes(trace.block_tokens) for m in trace.models
    ], dtype=np.int64)
    per_request = per_model[trace.model_index.astype(np.int64)]
    return np.repeat(per_request, np.diff(trace.block_offsets))


@dataclass
class SimResult:
    """What a simulation returns: per-request ``records`` and a one-row ``summary``.

    ``records`` and ``hit`` (per block access) are None when the caller asked not to keep
    them (a long stream whose records went to a file, or were not wanted).
    """

    config: CacheConfig
    records: pd.DataFrame | None
    summary_dict: dict
    hit: np.ndarray | None = field(repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([self.summary_dict])


def seen_before(trace: Trace) -> np.ndarray:
    """Per block access: 1 if its chained hash occurred in an earlier access, else 0."""
    return BlockStream().feed(trace).seen_before()


def capacity_units(trace: Trace, cfg: CacheConfig, specs=None) -> tuple[np.ndarray | None, int]:
    """Per-access weights (None = 1 each) and the capacity in those units (-1 unlimited)."""
    if cfg.capacity_bytes is not None:
        return block_bytes_per_access(trace, specs), int(cfg.capacity_bytes)
    if cfg.capacity_blocks is not None:
        return None, int(cfg.capacity_blocks)
    return None, -1


def _capacity(cfg: CacheConfig) -> int:
    if cfg.capacity_bytes is not None:
        return int(cfg.capacity_bytes)
    return -1 if cfg.capacity_blocks is None else int(cfg.capacity_blocks)


class _Totals:
    """The summary's sums, carried over chunks (integers, so the order of adding is moot)."""

    def __init__(self) -> None:
        self.requests = self.input_tokens = self.accesses = self.hits = 0
        self.lead_tokens = self.reused = self.evictions = self.expirations = 0

    def add(self, chunk: Trace, rec: dict, accesses: int) -> None:
        self.requests += chunk.n_requests
        self.input_tokens += int(chunk.input_tokens.sum())
        self.accesses += accesses
        self.hits += int(rec["hit_blocks"].sum())
        self.lead_tokens += int(rec["prefix_hit_tokens"].sum())
        self.reused += int(rec["reused_tokens"].sum())
        self.evictions += int(rec["evictions"].sum())
        self.expirations += int(rec["expirations"].sum())

    def summary(self, cache: CacheConfig, unique_blocks: int, block_tokens: int) -> dict:
        inp, acc = self.input_tokens, self.accesses
        return {
            "requests": self.requests, "input_tokens": inp, "block_accesses": acc,
            "unique_blocks": int(unique_blocks),
            "block_hit_ratio": float(self.hits / acc) if acc else 0.0,
            "prefix_hit_tokens": self.lead_tokens,
            "prefix_token_hit_ratio": float(self.lead_tokens / inp) if inp else 0.0,
            "reused_tokens": self.reused,
            "token_reuse_ratio": float(self.reused / inp) if inp else 0.0,
            "evictions": self.evictions, "expirations": self.expirations,
            "policy": cache.policy, "capacity_bytes": cache.capacity_bytes,
            "capacity_blocks": cache.capacity_blocks, "ttl_s": cache.ttl_s,
            "ttl_mode": cache.ttl_mode, "reuse": cache.reuse, "block_tokens": block_tokens,
        }


def _chunk_records(chunk: Trace, out: KernelOutput, cache: CacheConfig,
                   seen: np.ndarray | None, first_request: int) -> dict[str, np.ndarray]:
    """Per-request columns of one chunk (``first_request`` numbers its first row)."""
    hits, lead = prefix_runs(out.hit, chunk.block_offsets)
    if seen is not None:
        # a content hit is a true prefix hit only where the block's whole prefix (its chained
        # hash) has been seen before; the rest is position-independent reuse that blends
        _, lead = prefix_runs(out.hit & seen, chunk.block_offsets)
    n_blocks = np.diff(chunk.block_offsets)
    lead_tokens = np.where(lead == n_blocks, chunk.input_tokens, lead * chunk.block_tokens)
    if out.prefix_hit_tokens is not None:
        lead_tokens = out.prefix_hit_tokens
    if cache.reuse == "chunk":
        tok = chunk.block_token_counts()
        hit_tok = np.add.reduceat(np.where(out.hit.astype(bool), tok, 0), chunk.block_offsets[:-1]) \
            if len(tok) else np.zeros(chunk.n_requests, dtype=np.int64)
        hit_tok = np.where(n_blocks > 0, hit_tok, 0)
        nonprefix = hit_tok - lead_tokens
        blend = np.floor(nonprefix * cache.blend_recompute_share).astype(np.int64)
        reused = lead_tokens + nonprefix - blend
    else:
        hit_tok = lead_tokens
        blend = np.zeros(chunk.n_requests, dtype=np.int64)
        reused = lead_tokens
    models = np.array(chunk.models + ("",), dtype=object)[chunk.model_index.astype(np.int64)]
    return {
        "request": np.arange(first_request, first_request + chunk.n_requests, dtype=np.int64),
        "arrival_s": chunk.arrival_s, "session_id": chunk.session_ids,
        "tenant_id": chunk.tenant_ids, "model": models, "input_tokens": chunk.input_tokens,
        "output_tokens": chunk.output_tokens, "blocks": n_blocks, "hit_blocks": hits,
        "prefix_hit_blocks": lead, "prefix_hit_tokens": lead_tokens.astype(np.int64),
        "chunk_hit_tokens": hit_tok.astype(np.int64), "blend_recompute_tokens": blend,
        "reused_tokens": reused.astype(np.int64),
        "missed_tokens": (chunk.input_tokens - reused).astype(np.int64),
        "evictions": out.evictions, "expirations": out.expirations,
    }


RecordSink = Callable[["pd.DataFrame"], None]
RECORD_COLUMNS = ("request", "arrival_s", "session_id", "tenant_id", "model", "input_tokens",
                  "output_tokens", "blocks", "hit_blocks", "prefix_hit_blocks",
                  "prefix_hit_tokens", "chunk_hit_tokens", "blend_recompute_tokens",
                  "reused_tokens", "missed_tokens", "evictions", "expirations")


class CacheRun:
    """One cache configuration fed chunk after chunk, its state carried: the body of
    :func:`simulate_stream`, for a caller that interleaves several streams (per-replica
    caches of the serving simulation).  ``feed`` returns the chunk's per-request columns and
    per-access hit flags; ``summary`` the sums so far."""

    def __init__(self, cache: CacheConfig, *, model: str | ModelSpec | None = None,
                 specs: dict[str, ModelSpec] | None = None) -> None:
        self.cache, self.model = cache, model
        self.run = POLICIES.get(cache.policy, where="policy")(cache, _capacity(cache))
        self.chained = BlockStream()
        self.content = BlockStream(content=True) if cache.reuse == "chunk" else None
        self.weigh = None
        if cache.capacity_bytes is not None:
            def weigh(c: Trace) -> np.ndarray:
                return block_bytes_per_access(c, specs)
            self.weigh = weigh
        self.totals, self.block_tokens = _Totals(), 0

    def feed(self, chunk: Trace) -> tuple[dict[str, np.ndarray], np.ndarray]:
        chunk = resolve_trace_models(chunk, self.model)
        self.block_tokens = chunk.block_tokens
        content = self.content
        if content is not None and chunk.content_hashes is None:
            raise InputError("chunk reuse needs per-block content hashes, and this trace has none "
                             "(importers of chained hashes cannot know them); use --reuse prefix",
                             where="--reuse")
        key_stream = content if content is not None else self.chained
        key_stream.weigh = self.weigh
        stream = key_stream.feed(chunk)
        seen = self.chained.feed(chunk).seen_before() if content is not None else None
        out = self.run(chunk, stream)
        rec = _chunk_records(chunk, out, self.cache, seen, self.totals.requests)
        self.totals.add(chunk, rec, stream.n_accesses)
        return rec, out.hit

    def summary(self) -> dict:
        key_stream = self.content if self.content is not None else self.chained
        return self.totals.summary(self.cache, key_stream.n_objects, self.block_tokens)


def simulate_stream(source: Trace | TraceSource, cache: CacheConfig | None = None, *,
                    model: str | ModelSpec | None = None,
                    specs: dict[str, ModelSpec] | None = None, chunk_requests: int | None = None,
                    keep: bool = True, sink: RecordSink | None = None,
                    on_chunk: Callable[[int], None] | None = None) -> SimResult:
    """Simulate ``cache`` over a trace read chunk by chunk; see the module docstring.

    ``keep``: hold every chunk's records and hit flags in the result (False: summary only,
    memory bounded); ``sink`` receives each chunk's records as a DataFrame (to write them
    out as they come); ``on_chunk`` the number of requests done so far (progress).
    """
    cache = cache or CacheConfig()
    source = TraceSource.of(source)
    if sink is not None or keep:
        import pandas as pd
    run = CacheRun(cache, model=model, specs=specs)
    kept, hits = [], []
    columns = ("content_hashes",) if run.content is not None else ()
    # the engine compares chained hashes only for equality: stored dense ids may stand in
    for chunk in source.chunks(chunk_requests, columns=columns, ids_as_keys=True):
        rec, hit = run.feed(chunk)
        if sink is not None or keep:
            frame = pd.DataFrame(rec)
            if sink is not None:
                sink(frame)
            if keep:
                kept.append(frame)
                hits.append(hit)
        if on_chunk is not None:
            on_chunk(run.totals.requests)
    summary = run.summary()
    records = hit = None
    if keep and kept:
        records = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]
        hit = np.concatenate(hits) if len(hits) > 1 else hits[0]
    elif keep:  # a file with no requests
        records, hit = pd.DataFrame(columns=RECORD_COLUMNS), np.zeros(0, dtype=np.uint8)
    return SimResult(config=cache, records=records, summary_dict=summary, hit=hit)


def simulate(trace: Trace, cache: CacheConfig | None = None, *, model: str | ModelSpec | None = None,
             specs: dict[str, ModelSpec] | None = None) -> SimResult:
    """Simulate ``cache`` over an in-memory ``trace``: the stream of one chunk."""
    return simulate_stream(trace, cache, model=model, specs=specs)


def run_kernel(trace: Trace, cfg: CacheConfig, specs=None) -> tuple[AccessStream, KernelOutput]:
    """Run the configured policy over the whole trace's block (or content) stream."""
    weights, capacity = capacity_units(trace, cfg, specs)
    if cfg.reuse == "chunk" and trace.content_hashes is None:
        raise InputError("chunk reuse needs per-block content hashes, and this trace has none",
                         where="--reuse")
    stream = BlockStream(content=cfg.reuse == "chunk",
                         weigh=None if weights is None else (lambda _c: weights)).feed(trace)
    return stream, POLICIES.get(cfg.policy, where="policy")(cfg, capacity)(trace, stream)
