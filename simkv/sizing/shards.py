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

from simkv.sizing.grid import lru_grid
from simkv.trace.model import Trace

METRICS = ("block_hit_ratio", "prefix_token_hit_ratio")


def shards_grid(trace: Trace, sample_rate: float, **grid_kwargs) -> pd.DataFrame:
    """``lru_grid`` on a spatial sample at ``sample_rate`` (0 < R <= 1)."""
    return lru_grid(trace, sample_rate=sample_rate, **grid_kwargs)


def shards_error(trace: Trace, sample_rates, **grid_kwargs) -> pd.DataFrame:
    """Per sample rate: mean and max absolute error of each ratio against the exact grid."""
    exact = lru_grid(trace, **grid_kwargs)
    rows = []
    for rate in sample_rates:
        est = lru_grid(trace, sample_rate=rate, **grid_kwargs)
        row = {"sample_rate": float(rate), "sampled_accesses": int(est["block_accesses"].iloc[0]),
               "points": len(exact)}
        for m in METRICS:
            err = np.abs(est[m].to_numpy(float) - exact[m].to_numpy(float))
            row[f"{m}_mean_abs_error"] = float(err.mean())
            row[f"{m}_max_abs_error"] = float(err.max())
        rows.append(row)
    return pd.DataFrame(rows)
