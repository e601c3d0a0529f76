"""Stage ``lifecycle``: the storage hierarchy replayed with each workload's lifecycle events
(``simkv.sizing.hierarchy.simulate_levels``): utilization and stale bytes per level over
time, bytes by model, hit rate by prompt component, and the hit rate around each reset
(report section 5).  Runs on the workloads with events or a model mix (else the first)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage
from simkv.pipeline.stages.workloads import _slug
from simkv.pipeline.workload import WorkloadInput

#: every level chunks at the trace's block size (256 tokens in the examples), so the replay
#: needs no re-chunking; vLLM's own HBM blocks are 16 tokens (stated in the assumptions)
CHUNK_TOKENS = 256
#: how long before/after a reset the hit ratios are compared
RESET_WINDOW_S = 6 * 3600.0


def chosen(workloads: list[WorkloadInput]) -> list[WorkloadInput]:
    picked = [w for w in workloads
              if (w.head.meta or {}).get("events") or len(set(w.head.models)) > 1]
    return picked or workloads[:1]


def hierarchy_for(w: WorkloadInput):
    from simkv.sizing.levels import Hierarchy, default_levels

    chunk = w.head.block_tokens if w.head.block_tokens % 16 == 0 else CHUNK_TOKENS
    return Hierarchy(levels=default_levels(hbm_chunk_tokens=chunk, chunk_tokens=chunk))


def _resets(w: WorkloadInput, res, levels) -> list[dict]:
    """Hit rates in the windows before and after each reset (from the per-request records)."""
    ev, rec = res.events, res.records
    persistent = [lv.name for lv in levels if lv.persistent] or [levels[-1].name]
    out = []
    for e in ev[ev["kind"].str.contains("reset")].itertuples():
        t = float(e.applied_at_s)
        params = e.params if isinstance(e.params, dict) else {}
        pre = rec[(rec["arrival_s"] >= t - RESET_WINDOW_S) & (rec["arrival_s"] < t)]
        post = rec[(rec["arrival_s"] >= t) & (rec["arrival_s"] < t + RESET_WINDOW_S)]
        hr = [float(x["hit_tokens"].sum() / x["input_tokens"].sum()) if len(x) else np.nan
              for x in (pre, post)]
        out.append({"workload": w.name, "level": params.get("level") or persistent[-1],
                    "applied_at_s": t, "time_s": float(e.time_s), "hit_ratio_before": hr[0],
                    "hit_ratio_after": hr[1]})
    return out


def run(ctx: StageContext) -> StageOutput:
    from simkv.sizing.hierarchy import simulate_levels

    tables: dict[str, pd.DataFrame] = {}
    runs, resets = [], []
    for w in chosen(ctx.workloads()):
        h = hierarchy_for(w)
        res = simulate_levels(w.chunks, h)
        slug = _slug(w.name)
        tl = res.timeline.copy()
        tl.insert(0, "workload", w.name)
        tables[f"timeline_{slug}"] = tl
        ev = res.events.copy()
        if not ev.empty:
            ev["params"] = ev["params"].astype(str)
        ev.insert(0, "workload", w.name)
        tables[f"events_{slug}"] = ev
        if len(set(w.head.models)) > 1:
            bm = res.bytes_by_model.copy()
            bm.insert(0, "workload", w.name)
            tables[f"bytes_by_model_{slug}"] = bm
        comp = res.components.copy()
        comp.insert(0, "workload", w.name)
        tables[f"components_{slug}"] = comp
        resets += _resets(w, res, h.levels)
        runs.append({"workload": w.name, "slug": slug, "models": list(w.head.models),
                     "token_hit_ratio": float(res.summary["token_hit_ratio"]),
                     "levels": [{"name": lv.name, "capacity_bytes": lv.capacity_bytes,
                                 "persistent": bool(lv.persistent)} for lv in h.levels]})
    tables["resets"] = pd.DataFrame(resets, columns=["workload", "level", "applied_at_s", "time_s",
                                                     "hit_ratio_before", "hit_ratio_after"])
    return StageOutput(tables=tables, facts={"runs": runs, "reset_window_s": RESET_WINDOW_S})


register_stage(Stage("lifecycle", "lifecycle and visibility", run, needs=("workloads",)))
