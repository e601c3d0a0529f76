"""SHARDS (spatially hashed sampling) estimates of the grid, and their error against exact.

Fixed-rate SHARDS (Waldspurger et al., FAST'15) keeps every access to an object whose hashed
id falls below the rate ``R`` and scales capacities by ``R``; reuse times are untouched, so TTLs
need no scaling.  The block hit ratio is the hit share of sampled accesses.  The prefix-token
ratio is estimated from each request's sampled blocks only (a leading run that skips the
unsampled ones), which leans high; its error is measured, not assumed (``shards_error``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.cache.stream import densify
from simkv.errors import InputError
from simkv.sizing.executor import map_tasks
from simkv.sizing.grid import _axes as grid_axes
from simkv.sizing.grid import assemble, lru_grid, plan_parts, run_part
from simkv.sizing.storeshards import block_bytes_by_model
from simkv.sizing.stream import SizingStream
from simkv.trace.model import Trace
from simkv.trace.shardlayout import rate_threshold, shard_bounds, spatial_hash24
from simkv.trace.shardset import Partition, open_partition, read_shard
from simkv.trace.stream import TraceSource

METRICS = ("block_hit_ratio", "prefix_token_hit_ratio")


def shards_grid(trace: Trace, sample_rate: float, **grid_kwargs) -> pd.DataFrame:
    """``lru_grid`` on a spatial sample at ``sample_rate`` (0 < R <= 1)."""
    return lru_grid(trace, sample_rate=sample_rate, **grid_kwargs)


def shards_error(trace: Trace | TraceSource, sample_rates, **grid_kwargs) -> pd.DataFrame:
    """Per sample rate: mean and max absolute error of each ratio against the exact grid.

    Each grid (the exact one, then one per rate) streams the trace chunk by chunk
    (``grid_kwargs`` may set ``chunk_requests``), so the trace is read ``1 + len(rates)`` times
    and never held whole."""
    source = TraceSource.of(trace)
    exact = lru_grid(source, **grid_kwargs)
    rows = []
    for rate in sample_rates:
        est = lru_grid(source, sample_rate=rate, **grid_kwargs)
        row = _error_row(est, exact, rate, 1)
        del row["tasks"]
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ over a trace partition
# A partition's shards are ranges of the same spatial hash SHARDS samples by, so a sample at
# rate R lives inside one shard when R <= 1/K: task k keeps the hash range
# [bound_k, bound_k + R * 2^24) of shard k and reads nothing else.  Task 0's sample is exactly
# ``lru_grid(trace, sample_rate=R)``'s; the other tasks are independent samples of the same
# rate (other hash ranges), and pooling their hit and access counts lowers the variance.

COUNTS = ("hit_blocks", "prefix_hit_tokens", "block_accesses", "input_tokens")


def check_rate_fits(part: Partition, rate: float, where: str) -> None:
    """A sample at ``rate`` must fit in one shard: ``rate <= 1/K``.  (Shard bounds are rounded
    to whole hash values, so at ``rate == 1/K`` a task other than 0 may keep one hash value of
    2^24 fewer than ``rate`` asks: its shard is all it reads.)"""
    if not 0.0 < rate <= 1.0:
        raise InputError(f"rate {rate:g} is not within (0, 1]", where=where)
    if rate > 1.0 / part.shards:
        raise InputError(f"rate {rate:g} is larger than one shard of this {part.shards}-shard "
                         f"partition (1/{part.shards}); partition into at most {int(1 / rate)} "
                         "shards", where=where)


def shard_sample_stream(folder: str, k: int, rate: float, unit: str,
                        model: str | None) -> SizingStream:
    """The SHARDS sample at ``rate`` from shard ``k``'s dataset alone."""
    part = open_partition(folder)
    data = read_shard(part, k)
    lo = int(shard_bounds(part.shards)[k])
    h = spatial_hash24(data.hashes).astype(np.int64)
    keep = (h >= lo) & (h < lo + rate_threshold(rate))
    per_row = np.add.reduceat(keep.astype(np.int64), data.offsets[:-1]) if len(keep) else \
        np.zeros(len(data.requests), dtype=np.int64)
    offsets = np.zeros(len(data.requests) + 1, dtype=np.int64)
    np.cumsum(per_row, out=offsets[1:])
    row = np.repeat(np.arange(len(data.requests)), np.diff(data.offsets))[keep]
    pos = data.positions[keep]
    bt = part.block_tokens
    last = pos == data.n_blocks[row] - 1
    tokens = np.where(last, data.input_tokens[row] - (data.n_blocks[row] - 1) * bt, bt)
    ids, n_obj = densify(data.hashes[keep])
    sizes = np.ones(n_obj, dtype=np.int64)
    if unit == "bytes" and n_obj:
        per_model = block_bytes_by_model(part, model)
        midx = np.zeros(len(row), dtype=np.int64) if model is not None else \
            data.model_index[row].astype(np.int64)
        sizes = np.zeros(n_obj, dtype=np.int64)
        sizes[ids[::-1]] = per_model[midx][::-1]  # an object weighs what its first access weighs
    distinct = np.unique(sizes) if unit == "bytes" and n_obj else np.ones(1 if n_obj else 0, np.int64)
    return SizingStream(ids=ids, n_objects=int(n_obj), sizes=sizes, req_offsets=offsets,
                        req_time_s=np.ascontiguousarray(data.arrival_s, dtype=np.float64),
                        tokens=tokens.astype(np.int64), unit=unit,
                        distinct_sizes=distinct.astype(np.int64), sample_rate=float(rate))


def shard_sample_grid(folder: str, k: int, rate: float, unit: str, model: str | None,
                      capacities: list, ttls_s: list) -> pd.DataFrame:
    """One task: the sampled grid of shard ``k`` (run where the task runs)."""
    stream = shard_sample_stream(folder, k, rate, unit, model)
    caps, ttls = grid_axes(capacities, ttls_s)
    parts = plan_parts(stream, caps, len(ttls))
    results = [run_part(stream, caps, ttls, p) for p in parts]
    return assemble(stream, capacities, ttls_s, caps, ttls, results)


def pool(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Independent estimates pooled: counts summed, ratios recomputed from the sums."""
    out = frames[0].copy()
    for c in COUNTS:
        out[c] = np.sum([f[c].to_numpy(np.int64) for f in frames], axis=0)
    acc, tok = out["block_accesses"].to_numpy(float), out["input_tokens"].to_numpy(float)
    out["block_hit_ratio"] = np.divide(out["hit_blocks"], acc, out=np.zeros(len(out)), where=acc > 0)
    out["prefix_token_hit_ratio"] = np.divide(out["prefix_hit_tokens"], tok, out=np.zeros(len(out)),
                                              where=tok > 0)
    out.attrs["sample_tasks"] = len(frames)
    return out


def _task_frames(part: Partition, sample_rate: float, tasks: int | None, grid_kwargs: dict,
                 executor: str, address: str | None, where: str) -> list[pd.DataFrame]:
    check_rate_fits(part, sample_rate, where)
    cb, cy = grid_kwargs.get("capacities_blocks"), grid_kwargs.get("capacities_bytes")
    if (cb is None) == (cy is None):
        raise InputError("give capacities in blocks or in bytes (exactly one)", where="capacities")
    unit = "blocks" if cb is not None else "bytes"
    model = grid_kwargs.get("model")
    if unit == "bytes":
        block_bytes_by_model(part, model)  # fails before any task starts
    n = part.shards if tasks is None else min(tasks, part.shards)
    items = [(str(part.folder), k, float(sample_rate), unit, model, list(cb if cb is not None else cy),
              list(grid_kwargs.get("ttls_s", (None,)))) for k in range(n)]
    return map_tasks(shard_sample_grid, items, executor=executor, address=address)


def partition_grid(folder, sample_rate: float, *, tasks: int | None = None, executor: str = "inline",
                   address: str | None = None, where: str = "--sample-rate",
                   **grid_kwargs) -> pd.DataFrame:
    """SHARDS grid from a partition: one sampled shard per task (the first ``tasks``, default
    all), pooled.  ``grid_kwargs``: ``capacities_blocks`` or ``capacities_bytes``, ``ttls_s``,
    ``model``, as for ``lru_grid``."""
    part = open_partition(folder)
    return pool(_task_frames(part, sample_rate, tasks, grid_kwargs, executor, address, where))


def partition_shards_error(folder, sample_rates, *, executor: str = "inline",
                           address: str | None = None, **grid_kwargs) -> pd.DataFrame:
    """Per rate, against the exact grid of the whole trace (read back from the shards chunk
    by chunk, so it need not fit in memory): the error of task 0 alone (the in-memory sample), of the worst single task, and
    of all ``K`` tasks pooled.  The spread shows how much one sample can miss on a skewed
    trace (a sample that catches, or misses, the few blocks every request shares)."""
    part = open_partition(folder)
    for rate in sample_rates:
        check_rate_fits(part, rate, "--shards-error")
    exact = lru_grid(TraceSource.of(part.folder), **grid_kwargs)  # streamed from the shards
    rows = []
    for rate in sample_rates:
        frames = _task_frames(part, rate, None, grid_kwargs, executor, address, "--shards-error")
        singles = [_error_row(f, exact, rate, 1) for f in frames]
        worst = max(singles, key=lambda r: r["block_hit_ratio_max_abs_error"])
        rows += [dict(singles[0], estimate="task 0"), dict(worst, estimate="worst single task"),
                 dict(_error_row(pool(frames), exact, rate, len(frames)), estimate="pooled")]
    cols = ["sample_rate", "estimate", "tasks", "sampled_accesses", "points"]
    frame = pd.DataFrame(rows)
    return frame[cols + [c for c in frame.columns if c not in cols]]


def _error_row(est: pd.DataFrame, exact: pd.DataFrame, rate: float, tasks: int) -> dict:
    row = {"sample_rate": float(rate), "tasks": int(tasks),
           "sampled_accesses": int(est["block_accesses"].iloc[0]), "points": len(exact)}
    for m in METRICS:
        err = np.abs(est[m].to_numpy(float) - exact[m].to_numpy(float))
        row[f"{m}_mean_abs_error"] = float(err.mean())
        row[f"{m}_max_abs_error"] = float(err.max())
    return row
