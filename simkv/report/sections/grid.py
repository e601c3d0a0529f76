"""Section 3: hit rate over capacity x TTL (one-pass LRU grid), with the Belady bound.

The grid is exact (equal to the cache engine at every point; simkv.sizing).  Capacities are
bytes of KV for each workload's model(s), spaced geometrically up to the working set; TTLs are
refreshed on every hit.  Belady's MIN (no TTL) bounds what any eviction policy could reach.
Tables of the ``grid`` stage (working sets from ``simulate``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import ReportContext, Section, Table

KEY = "grid"
TITLE = "Hit rate over capacity x TTL"
#: the stages whose tables this section reads (its render-cache key covers their outputs)
READS = ('workloads', 'grid', 'simulate')


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, TITLE)
    sec.intro = ("How much of the input an LRU cache serves at each size and TTL, from one exact "
                 "pass over each trace; Belady's optimal policy bounds any eviction policy at the "
                 "same size.")
    if not ctx.run.has_table("grid", "grid"):
        sec.status = "unavailable"
        sec.mark_missing("capacity x TTL grid: the grid stage wrote no grid")
        return sec
    sec.missing.extend(ctx.run.facts("grid")["missing"])
    grid = ctx.run.table("grid", "grid")
    data = ctx.write_data("grid", grid)
    bel_frame = (ctx.run.table("grid", "grid_belady") if ctx.run.has_table("grid", "grid_belady")
                 else None)
    bel_file = ctx.write_data("grid_belady", bel_frame) if bel_frame is not None else None
    ws_of = dict(ctx.run.table("simulate", "workloads_summary")[["workload", "working_set_bytes"]]
                 .itertuples(index=False))
    for w in ctx.workloads:
        g = grid[grid["workload"] == w.name]
        if g.empty:
            continue
        ws = int(ws_of[w.name])
        finite = g[g["capacity_bytes"].notna()]
        caps = sorted(finite["capacity_bytes"].unique())
        ttls = list(dict.fromkeys(g["ttl_s"].tolist()))
        ttl_labels = [fmt.duration(None if pd.isna(t) else t) for t in ttls]
        # heatmap: capacity (rows) x TTL (columns)
        mat = np.array([[float(finite[(finite["capacity_bytes"] == c) & (
            finite["ttl_s"].isna() if pd.isna(t) else finite["ttl_s"] == t)]["prefix_token_hit_ratio"].iloc[0])
            for t in ttls] for c in caps])
        _figure(ctx, sec, w, (caps, ttls, ttl_labels, mat), finite, bel_frame, (data, bel_file))
        _readings(sec, w, g, (finite, caps, ttls), ws, bel_frame)
    sec.headline = _headline(grid, ws_of)
    sec.tables.append(Table(
        "Grid size", ("workload", "capacities", "TTLs", "points"),
        tuple((wl, str(g["capacity_bytes"].nunique(dropna=False)), str(g["ttl_s"].nunique(dropna=False)),
               str(len(g))) for wl, g in grid.groupby("workload", sort=False)),
        data_file=data))
    sec.assumptions.append("Capacities count KV bytes of each block at its request's model size "
                           "(bf16 KV, one copy, no tensor parallelism); LRU eviction; TTL refreshed "
                           "on every hit.")
    return sec


#: the share of the unlimited hit rate the headline sizes a cache to
HEADLINE_SHARE = 0.9


def _headline(grid: pd.DataFrame, ws_of: dict) -> str:
    """The section's first sentence: per workload, the smallest capacity (no TTL) reaching
    ``HEADLINE_SHARE`` of the unlimited hit rate, from the grid the run computed."""
    parts = []
    for wl, g in grid.groupby("workload", sort=False):
        unl = g[g["capacity_bytes"].isna() & g["ttl_s"].isna()]["prefix_token_hit_ratio"]
        if unl.empty:
            continue
        top = float(unl.iloc[0])
        no_ttl = g[g["capacity_bytes"].notna() & g["ttl_s"].isna()].sort_values("capacity_bytes")
        enough = no_ttl[no_ttl["prefix_token_hit_ratio"] >= HEADLINE_SHARE * top]
        if top <= 0:
            parts.append(f"{wl} gets no hits even with unlimited capacity")
        elif enough.empty:
            parts.append(f"{wl} needs more than the largest capacity tried "
                         f"({fmt.size(no_ttl['capacity_bytes'].max())}) to reach "
                         f"{HEADLINE_SHARE:.0%} of its unlimited {fmt.pct(top)}")
        else:
            c = float(enough["capacity_bytes"].iloc[0])
            ws = float(ws_of.get(wl) or 0)
            share = f", {fmt.pct(c / ws, 0)} of its working set" if ws else ""
            parts.append(f"{wl} reaches {HEADLINE_SHARE:.0%} of its unlimited hit rate "
                         f"({fmt.pct(top)}) at {fmt.size(c)} with no TTL{share}")
    if not parts:
        return ""
    return "Smallest LRU cache worth buying: " + "; ".join(parts) + "."


def _figure(ctx: ReportContext, sec: Section, w, axes_data, finite: pd.DataFrame,
            bel_frame: pd.DataFrame | None, files: tuple[str, str | None]) -> None:
    """Heatmap (capacity x TTL) and the same as curves, with Belady's bound."""
    caps, ttls, ttl_labels, mat = axes_data
    data, bel_file = files
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


def _readings(sec: Section, w, g: pd.DataFrame, grid_axes, ws: int,
              bel_frame: pd.DataFrame | None) -> None:
    finite, caps, ttls = grid_axes
    unl = g[g["capacity_bytes"].isna() & g["ttl_s"].isna()]["prefix_token_hit_ratio"].iloc[0]
    no_ttl = finite[finite["ttl_s"].isna()].sort_values("capacity_bytes")
    enough = no_ttl[no_ttl["prefix_token_hit_ratio"] >= 0.9 * unl]
    text = (f"{w.name}: an unlimited cache with no TTL serves {fmt.pct(unl)} of input tokens "
            f"(working set {fmt.size(ws)}).")
    if unl > 0 and not enough.empty:
        c90 = float(enough["capacity_bytes"].iloc[0])
        text += (f" 90% of that is reached at {fmt.size(c90)} "
                 f"({fmt.pct(c90 / ws if ws else 0, 0)} of the working set).")
    short = [t for t in ttls if not pd.isna(t)]
    if short:
        t0 = min(short)
        at = g[g["capacity_bytes"].isna() & (g["ttl_s"] == t0)]["prefix_token_hit_ratio"].iloc[0]
        text += (f" With a {fmt.duration(t0)} TTL even unlimited capacity serves only "
                 f"{fmt.pct(at)}.")
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
