"""Section 3: hit rate over capacity x TTL (one-pass LRU grid), with the Belady bound.

The grid is exact (equal to the cache engine at every point; simkv.sizing).  Capacities are
bytes of KV for each workload's model(s), spaced geometrically up to the working set; TTLs are
refreshed on every hit.  Belady's MIN (no TTL) bounds what any eviction policy could reach.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.report import fmt
from simkv.report.deps import need
from simkv.report.figures import new_figure
from simkv.report.model import Missing, ReportContext, Section, Table, WorkloadInput
from simkv.report.sections.common import working_set_bytes

KEY = "grid"

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


def workload_grid(ctx: ReportContext, w: WorkloadInput) -> pd.DataFrame:
    lru_grid = need("simkv.sizing", "lru_grid")
    quick = ctx.options.quick
    caps = capacities_for(working_set_bytes(ctx, w), N_CAPS_QUICK if quick else N_CAPS)
    ttls = TTLS_QUICK_S if quick else TTLS_S
    frame = lru_grid(w.trace, capacities_bytes=caps + [None], ttls_s=list(ttls))
    frame.insert(0, "workload", w.name)
    frame["capacity_bytes"] = frame["capacity_bytes"].astype("Float64")
    return frame


def belady(ctx: ReportContext, w: WorkloadInput, caps_bytes: list[int]) -> pd.DataFrame:
    """Belady (MIN, no TTL) block hit ratio at the grid's capacities (simkv.sizing.belady)."""
    belady_curve = need("simkv.sizing.belady", "belady_curve")
    if len(set(w.trace.models)) > 1:
        raise Missing("the Belady bound is block-level and this trace mixes models (block sizes)")
    out = belady_curve(w.trace, capacities_bytes=caps_bytes).copy()
    out.insert(0, "workload", w.name)
    out["capacity_bytes"] = out["capacity_bytes"].astype("Float64")
    return out


def _headline(heads: list[tuple]) -> str:
    """The section's answer: how big a cache must be, and what a short TTL costs."""
    c90 = sorted((v, n) for k, n, v in heads if k == "c90")
    ttl = [(v[0], n, v[1]) for k, n, v in heads if k == "ttl"]
    parts = []
    if c90:
        parts.append(f"90% of what an unlimited cache reuses takes {fmt.pct(c90[0][0], 0)} "
                     f"({c90[0][1]}) to {fmt.pct(c90[-1][0], 0)} ({c90[-1][1]}) of a workload's "
                     "working set")
    if ttl:
        loss, name, t0 = max(ttl)
        parts.append(f"a {fmt.duration(t0)} TTL costs up to {100 * loss:.1f} points of hit rate "
                     f"({name})")
    return ("; ".join(parts) + ".") if parts else ""


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, "Hit rate over capacity x TTL")
    sec.intro = ("How much of the input an LRU cache serves at each size and TTL, from one exact "
                 "pass over each trace; Belady's optimal policy bounds any eviction policy at the "
                 "same size.")
    frames, bel = [], []
    for w in ctx.workloads:
        try:
            g = workload_grid(ctx, w)
        except Missing as exc:
            sec.mark_missing(f"capacity x TTL grid: {exc}")
            break
        frames.append(g)
        caps = [int(c) for c in g["capacity_bytes"].dropna().unique()]
        try:
            bel.append(belady(ctx, w, caps))
        except Missing as exc:
            sec.missing.append(f"Belady bound for {w.name}: {exc}")
    if not frames:
        sec.status = "unavailable"
        return sec
    grid = pd.concat(frames, ignore_index=True)
    ctx.cache["grid"] = grid
    data = ctx.write_data("grid", grid)
    bel_frame = pd.concat(bel, ignore_index=True) if bel else None
    bel_file = ctx.write_data("grid_belady", bel_frame) if bel_frame is not None else None
    heads: list[tuple] = []
    for w in ctx.workloads:
        g = grid[grid["workload"] == w.name]
        if g.empty:
            continue
        ws = working_set_bytes(ctx, w)
        finite = g[g["capacity_bytes"].notna()]
        caps = sorted(finite["capacity_bytes"].unique())
        ttls = list(dict.fromkeys(g["ttl_s"].tolist()))
        ttl_labels = [fmt.duration(None if pd.isna(t) else t) for t in ttls]
        # heatmap: capacity (rows) x TTL (columns)
        mat = np.array([[float(finite[(finite["capacity_bytes"] == c) & (
            finite["ttl_s"].isna() if pd.isna(t) else finite["ttl_s"] == t)]["prefix_token_hit_ratio"].iloc[0])
            for t in ttls] for c in caps])
        with new_figure(1, 2, figsize=(8.5, 3.6)) as (fig, (ax1, ax2)):
            im = ax1.imshow(mat * 100, aspect="auto", origin="lower", cmap="viridis", vmin=0,
                            vmax=max(1e-9, float(mat.max()) * 100))
            ax1.set_xticks(range(len(ttls)))
            ax1.set_xticklabels(ttl_labels, fontsize=7, rotation=30)
            step = max(1, len(caps) // 6)
            ax1.set_yticks(range(0, len(caps), step))
            ax1.set_yticklabels([fmt.size(c) for c in caps[::step]], fontsize=7)
            ax1.set_xlabel("TTL (refreshed on hit)")
            ax1.set_ylabel("capacity")
            ax1.grid(False)
            fig.colorbar(im, ax=ax1, label="prefix tokens hit (%)")
            for j in range(len(ttls)):
                ax2.plot(np.array(caps) / 2**30, mat[:, j] * 100, marker=".", label=ttl_labels[j])
            if bel_frame is not None:
                b = bel_frame[bel_frame["workload"] == w.name].sort_values("capacity_bytes")
                ax2.plot(b["capacity_bytes"] / 2**30, b["belady_block_hit_ratio"] * 100, "k--",
                         label="Belady, block hits (no TTL)")
                lru_b = finite[finite["ttl_s"].isna()].sort_values("capacity_bytes")
                ax2.plot(lru_b["capacity_bytes"] / 2**30, lru_b["block_hit_ratio"] * 100, "k:",
                         label="LRU, block hits (no TTL)")
            ax2.set_xscale("log")
            ax2.set_xlabel("capacity (GiB, log)")
            ax2.set_ylabel("prefix tokens hit (%)")
            ax2.legend(fontsize=6)
            sec.figures.append(ctx.figure(
                KEY, fig, title=f"{w.name}: hit rate over capacity x TTL",
                caption=(f"Exact LRU prefix-token hit ratio of {w.name} ({w.model}) at each capacity "
                         "and TTL (left); the same as curves, with Belady's optimum where available "
                         "(right)." + (f" Belady data: {bel_file}." if bel_file else "")),
                data_file=data, basis="modelled"))
        # readings
        unl = g[g["capacity_bytes"].isna() & g["ttl_s"].isna()]["prefix_token_hit_ratio"].iloc[0]
        no_ttl = finite[finite["ttl_s"].isna()].sort_values("capacity_bytes")
        enough = no_ttl[no_ttl["prefix_token_hit_ratio"] >= 0.9 * unl]
        text = (f"{w.name}: an unlimited cache with no TTL serves {fmt.pct(unl)} of input tokens "
                f"(working set {fmt.size(ws)}).")
        if unl > 0 and not enough.empty:
            c90 = float(enough["capacity_bytes"].iloc[0])
            heads.append(("c90", w.name, c90 / ws if ws else 0.0))
            text += (f" 90% of that is reached at {fmt.size(c90)} "
                     f"({fmt.pct(c90 / ws if ws else 0, 0)} of the working set).")
        short = [t for t in ttls if not pd.isna(t)]
        if short:
            t0 = min(short)
            at = g[g["capacity_bytes"].isna() & (g["ttl_s"] == t0)]["prefix_token_hit_ratio"].iloc[0]
            text += (f" With a {fmt.duration(t0)} TTL even unlimited capacity serves only "
                     f"{fmt.pct(at)}.")
            heads.append(("ttl", w.name, (float(unl) - float(at), t0)))
        sec.readings.append(text)
        if bel_frame is not None:
            b = bel_frame[bel_frame["workload"] == w.name]
            if not b.empty:
                mid = caps[len(caps) // 2]
                bm = float(b[b["capacity_bytes"] == mid]["belady_block_hit_ratio"].iloc[0])
                lm = float(no_ttl[no_ttl["capacity_bytes"] == mid]["block_hit_ratio"].iloc[0])
                sec.readings.append(
                    f"{w.name}: at {fmt.size(mid)} with no TTL, LRU hits {fmt.pct(lm)} of block "
                    f"accesses and Belady's optimum {fmt.pct(bm)}: the gap is what a better "
                    "eviction policy could still win.")
    sec.headline = _headline(heads)
    sec.tables.append(Table(
        "Grid size", ("workload", "capacities", "TTLs", "points"),
        tuple((wl, str(g["capacity_bytes"].nunique(dropna=False)), str(g["ttl_s"].nunique(dropna=False)),
               str(len(g))) for wl, g in grid.groupby("workload", sort=False)),
        data_file=data))
    sec.assumptions.append("Capacities count KV bytes of each block at its request's model size "
                           "(bf16 KV, one copy, no tensor parallelism); LRU eviction; TTL refreshed "
                           "on every hit.")
    return sec
