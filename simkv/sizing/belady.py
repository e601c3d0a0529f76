"""Belady's MIN: the optimal block hit ratio at each capacity, an upper bound for any policy.

Block level (every block weighs one slot): with unit sizes MIN (evict the block whose next use
is farthest; do not admit a block whose own next use is farther than every cached one) is
optimal.  With blocks of different byte sizes the optimum is NP-hard, so byte capacities are
converted to blocks only when every block has the same size.  TTLs only remove hits, so the
curve bounds LRU at every TTL too.

MIN needs each access's next use, which a forward stream cannot give; rather than hold the
whole trace, :func:`belady_curve` streams it in three passes through two spill files in a
temporary directory (``tempfile``, so ``$TMPDIR``; removed on success, error and Ctrl-C):

1. the trace, chunk by chunk, through the access stream the sizing grid reads
   (``simkv.sizing.stream.sizing_block_stream``): each access's dense id goes to ``ids.bin``
   (int32 when the ids fit);
2. ``ids.bin`` backwards, block by block, with one "next position" per object: each access's
   next use goes to ``next.bin`` (int32 when positions up to twice the accesses fit);
3. both files forwards, block by block: MIN with bypass at every capacity at once, each
   capacity's cached set and heap carried over blocks (``simkv.sizing.belady_kernels``).

Memory is per unique block (the id map, then a next position, then per capacity a next use
and a heap bounded by twice the capacity) plus one block; disk is 8 to 16 bytes per access.
Both are estimated before they are needed and refused, with the estimate, when short.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simkv import guard
from simkv.cache.engine import resolve_trace_models
from simkv.errors import InputError
from simkv.sizing.belady_kernels import min_block, next_use_block
from simkv.sizing.kernels import belady_hits, next_use
from simkv.sizing.stream import sizing_block_stream
from simkv.trace.model import Trace
from simkv.trace.stream import PARTITION, TraceSource
from simkv.units import format_bytes

#: accesses per block of the two spill passes (int32 ids and next uses: 16 MiB a block)
DEFAULT_BLOCK_ACCESSES = 1 << 21
#: heap entries a capacity gets beyond twice itself (a small cache still compacts rarely)
HEAP_SLACK = 1024
#: bytes one heap entry takes (int64 next use, int64 object)
HEAP_ENTRY_BYTES = 16
_I32_MAX = np.iinfo(np.int32).max


def belady_hit_flags(ids: np.ndarray, n_objects: int, capacity_blocks: int) -> np.ndarray:
    """Per-access hit flags of MIN with bypass at ``capacity_blocks`` (a whole id stream)."""
    return belady_hits(ids, next_use(ids, n_objects), n_objects, int(capacity_blocks))


def n_accesses_hint(source: TraceSource) -> int:
    """Block accesses of the stream: from memory or the file's metadata, else counted."""
    if source.trace is not None:
        return source.trace.n_block_accesses
    if source.format == PARTITION:
        from simkv.trace.shardset import open_partition

        return int(open_partition(source.path).n_blocks)
    if source.path is not None and source.path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            raw = (pq.ParquetFile(str(source.path)).metadata.metadata or {}).get(b"simkv.n_blocks")
            if raw is not None:
                return int(raw)
        except (pa.ArrowException, OSError, ValueError):
            pass  # unreadable: counting below reports it, with the file named
    return sum(c.n_block_accesses for c in source.chunks(None, columns=(), ids_as_keys=True))


def _dtype_for(largest: int) -> np.dtype:
    return np.dtype(np.int32) if largest <= _I32_MAX else np.dtype(np.int64)


def spill_bytes_per_access(n_accesses: int) -> int:
    """Disk per access: an id (int32 while ids fit) and a next use (int32 while ``2n`` fits)."""
    return _dtype_for(n_accesses).itemsize + _dtype_for(2 * n_accesses).itemsize


def check_spill_disk(n_accesses: int, folder: str | Path) -> None:
    """Refuse, with the estimate, when ``folder`` has less free disk than the two spill files."""
    need = n_accesses * spill_bytes_per_access(n_accesses)
    free = shutil.disk_usage(folder).free
    if need > free:
        raise InputError(f"the Belady bound spills about {format_bytes(need)} to {folder} "
                         f"({n_accesses:,} block accesses x {spill_bytes_per_access(n_accesses)} "
                         f"bytes) and {format_bytes(free)} is free there: point TMPDIR at a disk "
                         f"with room, or drop --belady", where="--belady")


def state_bytes(n_objects: int, caps_blocks: list[int], block_accesses: int) -> int:
    """Memory of passes 2 and 3: a next position per object, per capacity below the object
    count a next use per object and its heap, and one block of ids, next uses and copies."""
    per_cap = sum(8 * n_objects + HEAP_ENTRY_BYTES * (2 * c + HEAP_SLACK)
                  for c in set(caps_blocks) if 0 < c < n_objects)
    return 8 * n_objects + per_cap + 32 * block_accesses


@dataclass(frozen=True)
class _Spilled:
    """What the forward pass leaves: the ids file, its dtype, and the stream's totals."""

    path: Path
    dtype: np.dtype
    n_accesses: int
    n_objects: int
    distinct_sizes: np.ndarray  # int64 ascending: the object sizes seen (bytes unit), or [1]


def _spill_ids(source: TraceSource, unit: str, model: str | None, chunk_requests: int | None,
               dtype: np.dtype, path: Path) -> _Spilled:
    """Pass 1: each access's dense id to ``path``; a second block size refuses at once."""
    bs = sizing_block_stream(unit, None, 0)
    sizes: set[int] = set()
    limit = np.iinfo(dtype).max
    with open(path, "wb") as fh:
        for chunk in source.chunks(chunk_requests, columns=(), ids_as_keys=True):
            a = bs.feed(resolve_trace_models(chunk, model))
            if a.n_objects - 1 > limit:
                raise ValueError("more objects than the stream's access count said")
            if unit == "bytes" and a.n_objects > a.n_before:
                sizes.update(int(s) for s in np.unique(a.sizes[a.n_before:a.n_objects]))
                if len(sizes) > 1:
                    raise InputError("the Belady bound is block-level; this trace mixes block "
                                     "sizes (several models), so give capacities in blocks",
                                     where="--belady")
            fh.write(np.ascontiguousarray(a.ids, dtype=dtype).tobytes())
    n_obj = bs.n_objects
    distinct = np.array(sorted(sizes), dtype=np.int64) if unit == "bytes" else \
        np.ones(1 if n_obj else 0, dtype=np.int64)
    return _Spilled(path, dtype, bs.n_accesses, n_obj, distinct)


def _read_block(fh, dtype: np.dtype, start: int, count: int) -> np.ndarray:
    """Accesses ``start .. start+count-1`` of a spill file."""
    buf = np.empty(count, dtype=dtype)
    view = memoryview(buf).cast("B")
    fh.seek(start * dtype.itemsize)
    got = 0
    while got < view.nbytes:
        k = fh.readinto(view[got:])
        if not k:
            raise OSError(f"spill file {fh.name} ended early")
        got += k
    return buf


def _spill_next_uses(ids: _Spilled, block: int, path: Path) -> np.dtype:
    """Pass 2: ``ids.bin`` from its last block to its first; next uses to ``path``."""
    n = ids.n_accesses
    dtype = _dtype_for(2 * n)
    seen = np.full(ids.n_objects, -1, dtype=np.int64)
    with open(ids.path, "rb") as src, open(path, "wb") as dst:
        for start in reversed(range(0, n, block)):
            count = min(block, n - start)
            out = np.empty(count, dtype=dtype)
            next_use_block(_read_block(src, ids.dtype, start, count), start, n, seen, out)
            dst.seek(start * dtype.itemsize)
            dst.write(out.tobytes())
    return dtype


class _MinState:
    """One capacity's MIN state, carried over the blocks of pass 3."""

    def __init__(self, capacity: int, n_objects: int, slack: int = HEAP_SLACK) -> None:
        self.capacity = capacity
        self.key = np.full(n_objects, -1, dtype=np.int64)
        self.hk = np.empty(2 * capacity + slack, dtype=np.int64)
        self.ho = np.empty(2 * capacity + slack, dtype=np.int64)
        self.scal = np.zeros(2, dtype=np.int64)
        self.hits = 0

    def feed(self, ids: np.ndarray, nxt: np.ndarray) -> None:
        self.hits += int(min_block(ids, nxt, self.capacity, self.key, self.hk, self.ho,
                                   self.scal))


def _min_hits(ids: _Spilled, nxt_path: Path, nxt_dtype: np.dtype, caps: list[int],
              block: int) -> list[int]:
    """Pass 3: hits of MIN at each capacity in blocks, all capacities in one pass over the
    files.  Capacity <= 0 hits nothing; one with room for every object never evicts, so it
    hits every reuse (accesses minus objects)."""
    n, u = ids.n_accesses, ids.n_objects
    hits = {c: (0 if c <= 0 else n - u) for c in set(caps) if c <= 0 or c >= u}
    states = [_MinState(c, u) for c in sorted(set(caps) - set(hits))]
    if states:
        with open(ids.path, "rb") as fi, open(nxt_path, "rb") as fn, \
                ThreadPoolExecutor(max_workers=min(2, len(states))) as pool:
            for start in range(0, n, block):
                count = min(block, n - start)
                a = _read_block(fi, ids.dtype, start, count)
                b = _read_block(fn, nxt_dtype, start, count)
                list(pool.map(lambda st, a=a, b=b: st.feed(a, b), states))
        hits.update({st.capacity: st.hits for st in states})
    return [hits[c] for c in caps]


def belady_curve(trace: Trace | TraceSource, *, capacities_blocks=None, capacities_bytes=None,
                 model: str | None = None, chunk_requests: int | None = None,
                 block_accesses: int | None = None,
                 spill_dir: str | Path | None = None) -> pd.DataFrame:
    """Optimal block hit ratio per capacity (``None`` = unlimited: every reuse hits).

    ``trace``: a stream (read once, ``chunk_requests`` requests at a time, after a counting
    pass when the file does not store its access count, as Parquet does) or an in-memory
    trace; ``block_accesses``: accesses per block of the spill passes; ``spill_dir``: where the
    temporary directory goes (default ``tempfile.gettempdir()``, i.e. ``$TMPDIR``).  Results
    do not depend on either size.
    """
    if (capacities_blocks is None) == (capacities_bytes is None):
        raise InputError("give capacities in blocks or in bytes (exactly one)", where="capacities")
    unit = "bytes" if capacities_bytes is not None else "blocks"
    block = int(block_accesses or DEFAULT_BLOCK_ACCESSES)
    if block < 1:
        raise ValueError("block_accesses must be >= 1")
    source = TraceSource.of(trace)
    n_hint = n_accesses_hint(source)
    folder = Path(spill_dir if spill_dir is not None else tempfile.gettempdir())
    check_spill_disk(n_hint, folder)
    with tempfile.TemporaryDirectory(prefix="simkv-belady-", dir=folder) as tmp:
        ids = _spill_ids(source, unit, model, chunk_requests, _dtype_for(n_hint),
                         Path(tmp) / "ids.bin")
        if unit == "bytes":
            size = int(ids.distinct_sizes[0]) if len(ids.distinct_sizes) else 1
            caps = [None if c is None else int(c) // size for c in capacities_bytes]
            col, shown = "capacity_bytes", list(capacities_bytes)
        else:
            caps = [None if c is None else int(c) for c in capacities_blocks]
            col, shown = "capacity_blocks", list(capacities_blocks)
        u, n = ids.n_objects, ids.n_accesses
        caps_eff = [u if c is None else c for c in caps]
        guard.check(state_bytes(u, caps_eff, min(block, max(n, 1))),
                    f"the Belady bound's state for {u:,} unique blocks at "
                    f"{len(caps_eff)} capacities")
        nxt_dtype = _spill_next_uses(ids, block, Path(tmp) / "next.bin")
        hits = _min_hits(ids, Path(tmp) / "next.bin", nxt_dtype, caps_eff, block)
    ratios = [h / n if n else 0.0 for h in hits]
    return pd.DataFrame({col: pd.array(shown, dtype="Int64"), "belady_block_hit_ratio": ratios})
