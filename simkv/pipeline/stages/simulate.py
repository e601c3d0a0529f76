"""Stage ``simulate``: what an unlimited cache reuses on each workload (prefix and chunk
reuse), working sets, and the arrival rate over each window (report section 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage
from simkv.pipeline.stages.common import (
    blend_recompute_share,
    request_totals,
    unlimited,
    window_s,
    working_set_bytes,
)


def _summary(workloads) -> pd.DataFrame:
    rows = []
    for w in workloads:
        s = unlimited(w).summary_dict
        tot = request_totals(w)
        rows.append({
            "workload": w.name, "model": w.model, "source": w.source,
            "requests": tot.requests, "window_s": window_s(w),
            "input_tokens": tot.input_tokens,
            "output_tokens": tot.output_tokens,
            "block_tokens": int(w.head.block_tokens), "unique_blocks": int(s["unique_blocks"]),
            "working_set_bytes": working_set_bytes(w),
            "unlimited_prefix_token_hit_ratio": float(s["prefix_token_hit_ratio"]),
            "unlimited_block_hit_ratio": float(s["block_hit_ratio"]),
            "sessions": tot.sessions,
        })
    return pd.DataFrame(rows)


def _arrivals(workloads) -> pd.DataFrame:
    """Requests per time bin; each chunk's arrivals are counted into the same bins (a count
    does not depend on the other arrivals), so the histogram is that of the whole trace."""
    series = []
    for w in workloads:
        tot = request_totals(w)
        window = window_s(w)
        width = max(60.0, np.ceil(window / 60.0 / 60.0) * 60.0)  # at most ~60 bins
        edges = np.arange(0.0, max(window, width) + width, width)
        counts = np.zeros(len(edges) - 1, dtype=np.int64)
        for chunk in w.chunks.chunks(columns=(), ids_as_keys=True):
            counts += np.histogram(chunk.arrival_s - tot.first_s, bins=edges)[0]
        series.append(pd.DataFrame({"workload": w.name, "t_start_s": edges[:-1],
                                    "bin_s": width, "requests": counts,
                                    "requests_per_min": counts * 60.0 / width}))
    return pd.concat(series, ignore_index=True)


def _reuse(workloads) -> pd.DataFrame:
    """Prefix vs chunk reuse of an unlimited cache, for the workloads with content hashes."""
    rows = []
    for w in workloads:
        if w.head.content_hashes is None:
            continue
        p = unlimited(w, "prefix").summary_dict
        c = unlimited(w, "chunk").summary_dict
        rows.append({"workload": w.name, "prefix_token_hit_ratio": p["token_reuse_ratio"],
                     "chunk_token_reuse_ratio": c["token_reuse_ratio"],
                     "chunk_block_hit_ratio": c["block_hit_ratio"],
                     "blend_recompute_share": blend_recompute_share()})
    return pd.DataFrame(rows, columns=["workload", "prefix_token_hit_ratio", "chunk_token_reuse_ratio",
                                       "chunk_block_hit_ratio", "blend_recompute_share"])


def run(ctx: StageContext) -> StageOutput:
    workloads = ctx.workloads()
    tables = {"reuse": _reuse(workloads)}
    if workloads:
        tables["workloads_summary"] = _summary(workloads)
        tables["workloads_arrivals"] = _arrivals(workloads)
    facts = {"blend_recompute_share": blend_recompute_share(),
             "workloads": [{"name": w.name, "models": list(w.head.models),
                            "has_events": bool((w.head.meta or {}).get("events")),
                            "has_content_hashes": w.head.content_hashes is not None}
                           for w in workloads]}
    return StageOutput(tables=tables, facts=facts)


register_stage(Stage("simulate", "simulations", run, needs=("workloads",)))
