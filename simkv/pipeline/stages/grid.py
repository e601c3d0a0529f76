"""Stage ``grid``: the exact LRU hit-rate grid over capacity x TTL, and Belady's bound
(report section 3).  Capacities are geometric from the working set / 256 to the working set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage
from simkv.pipeline.workload import WorkloadInput

TTLS_S = (60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, None)
TTLS_QUICK_S = (300.0, 3600.0, None)
N_CAPS, N_CAPS_QUICK = 16, 8
#: smallest capacity as a fraction of the working set
MIN_FRACTION = 1.0 / 256


def capacities_for(ws_bytes: int, n: int) -> list[int]:
    """``n`` capacities from the working set / 256 to the working set, geometric."""
    if ws_bytes <= 0:
        return [0]
    caps = np.unique(np.geomspace(max(1.0, ws_bytes * MIN_FRACTION), float(ws_bytes), n).astype(np.int64))
    return [int(c) for c in caps]


def workload_grid(w: WorkloadInput, ws_bytes: int, quick: bool) -> pd.DataFrame:
    from simkv.sizing import lru_grid

    caps = capacities_for(ws_bytes, N_CAPS_QUICK if quick else N_CAPS)
    ttls = TTLS_QUICK_S if quick else TTLS_S
    frame = lru_grid(w.chunks, capacities_bytes=caps + [None], ttls_s=list(ttls))
    frame.insert(0, "workload", w.name)
    frame["capacity_bytes"] = frame["capacity_bytes"].astype("Float64")
    return frame


def belady(w: WorkloadInput, caps_bytes: list[int]) -> pd.DataFrame:
    """Belady (MIN, no TTL) block hit ratio at the grid's capacities (simkv.sizing.belady,
    which streams the trace through spill files rather than hold it)."""
    from simkv.sizing.belady import belady_curve

    out = belady_curve(w.chunks, capacities_bytes=caps_bytes).copy()
    out.insert(0, "workload", w.name)
    out["capacity_bytes"] = out["capacity_bytes"].astype("Float64")
    return out


def run(ctx: StageContext) -> StageOutput:
    ws = dict(ctx.table("simulate", "workloads_summary")[["workload", "working_set_bytes"]]
              .itertuples(index=False)) if ctx.workloads() else {}
    frames, bel, missing = [], [], []
    for w in ctx.workloads():
        g = workload_grid(w, int(ws[w.name]), ctx.options.quick)
        frames.append(g)
        if len(set(w.head.models)) > 1:
            missing.append(f"Belady bound for {w.name}: the Belady bound is block-level and this "
                           "trace mixes models (block sizes)")
            continue
        bel.append(belady(w, [int(c) for c in g["capacity_bytes"].dropna().unique()]))
    tables = {}
    if frames:
        tables["grid"] = pd.concat(frames, ignore_index=True)
    if bel:
        tables["grid_belady"] = pd.concat(bel, ignore_index=True)
    return StageOutput(tables=tables, facts={"missing": missing})


register_stage(Stage("grid", "capacity x TTL grid", run, needs=("workloads", "simulate"),
                     options=("quick",)))
