"""Belady's MIN: the optimal block hit ratio at each capacity, an upper bound for any policy.

Block level (every block weighs one slot): with unit sizes MIN (evict the block whose next use
is farthest; do not admit a block whose own next use is farther than every cached one) is
optimal.  With blocks of different byte sizes the optimum is NP-hard, so byte capacities are
converted to blocks only when every block has the same size.  TTLs only remove hits, so the
curve bounds LRU at every TTL too.

MIN needs each access's next use, so unlike the streaming passes it holds the whole stream;
it estimates that memory first and refuses, naming the estimate, when the machine lacks it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.errors import InputError
from simkv.sizing.kernels import belady_hits, next_use
from simkv.sizing.stream import prepare_stream
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource


def belady_hit_flags(ids: np.ndarray, n_objects: int, capacity_blocks: int) -> np.ndarray:
    """Per-access hit flags of MIN with bypass at ``capacity_blocks``."""
    return belady_hits(ids, next_use(ids, n_objects), n_objects, int(capacity_blocks))


#: bytes per block access Belady holds at once: the trace's hash (8), dense id (8), next use
#: (8), heap key and object (16), hit flag (1), and the id map's share, rounded up
BELADY_BYTES_PER_ACCESS = 48


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_belady_memory(source: TraceSource) -> None:
    """Belady needs every access's next use, so the whole stream at once: refuse, with the
    estimate, when that is more memory than the machine has free (rather than be killed)."""
    if source.trace is not None:
        n = source.trace.n_block_accesses
    else:
        n = sum(c.n_block_accesses for c in source.chunks(None, columns=()))
    need = BELADY_BYTES_PER_ACCESS * n
    have = available_memory_bytes()
    if have is not None and need > have:
        raise InputError(f"the Belady bound needs the whole trace in memory: about "
                         f"{need / 2**30:.1f} GiB for {n:,} block accesses, and "
                         f"{have / 2**30:.1f} GiB is available; drop --belady or use a shorter "
                         f"trace", where="--belady")


def belady_curve(trace: Trace | TraceSource, *, capacities_blocks=None, capacities_bytes=None,
                 model: str | None = None) -> pd.DataFrame:
    """Optimal block hit ratio per capacity (``None`` = unlimited: every reuse hits)."""
    if (capacities_blocks is None) == (capacities_bytes is None):
        raise InputError("give capacities in blocks or in bytes (exactly one)", where="capacities")
    source = TraceSource.of(trace)
    check_belady_memory(source)
    trace = source.load()
    if capacities_bytes is not None:
        stream = prepare_stream(trace, unit="bytes", model=model)
        if len(stream.distinct_sizes) > 1:
            raise InputError("the Belady bound is block-level; this trace mixes block sizes "
                             "(several models), so give capacities in blocks", where="--belady")
        size = int(stream.distinct_sizes[0]) if len(stream.distinct_sizes) else 1
        caps = [None if c is None else int(c) // size for c in capacities_bytes]
        col, shown = "capacity_bytes", list(capacities_bytes)
    else:
        stream = prepare_stream(trace, unit="blocks", model=model)
        caps = [None if c is None else int(c) for c in capacities_blocks]
        col, shown = "capacity_blocks", list(capacities_blocks)
    ids, n_obj, n = stream.ids, stream.n_objects, stream.n_accesses
    nxt = next_use(ids, n_obj)
    ratios = []
    for c in caps:
        c_eff = n_obj if c is None else c
        ratios.append(float(belady_hits(ids, nxt, n_obj, c_eff).sum()) / n if n else 0.0)
    return pd.DataFrame({col: pd.array(shown, dtype="Int64"), "belady_block_hit_ratio": ratios})
