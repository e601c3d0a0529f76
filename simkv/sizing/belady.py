"""Belady's MIN: the optimal block hit ratio at each capacity, an upper bound for any policy.

Block level (every block weighs one slot): with unit sizes MIN (evict the block whose next use
is farthest; do not admit a block whose own next use is farther than every cached one) is
optimal.  With blocks of different byte sizes the optimum is NP-hard, so byte capacities are
converted to blocks only when every block has the same size.  TTLs only remove hits, so the
curve bounds LRU at every TTL too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.errors import InputError
from simkv.sizing.kernels import belady_hits, next_use
from simkv.sizing.stream import prepare_stream
from simkv.trace.model import Trace


def belady_hit_flags(ids: np.ndarray, n_objects: int, capacity_blocks: int) -> np.ndarray:
    """Per-access hit flags of MIN with bypass at ``capacity_blocks``."""
    return belady_hits(ids, next_use(ids, n_objects), n_objects, int(capacity_blocks))


def belady_curve(trace: Trace, *, capacities_blocks=None, capacities_bytes=None,
                 model: str | None = None) -> pd.DataFrame:
    """Optimal block hit ratio per capacity (``None`` = unlimited: every reuse hits)."""
    if (capacities_blocks is None) == (capacities_bytes is None):
        raise InputError("give capacities in blocks or in bytes (exactly one)", where="capacities")
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
