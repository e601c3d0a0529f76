"""Section 5: lifecycle and visibility, the brief's storage view.

Utilization over time per storage level, bytes by model, stale bytes after a prompt (template)
change and what a reset does, from the sizing engine's storage hierarchy replayed with the
workload's lifecycle events (``simkv.sizing.hierarchy.simulate_levels``).  It runs on the
workloads that have lifecycle events or mix models (on a user's trace: that trace).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.report import fmt
from simkv.report.deps import need
from simkv.report.figures import new_figure
from simkv.report.model import Missing, ReportContext, Section, Table, WorkloadInput

KEY = "lifecycle"
#: every level chunks at the trace's block size (256 tokens in the examples), so the replay
#: needs no re-chunking; vLLM's own HBM blocks are 16 tokens (stated in the assumptions)
CHUNK_TOKENS = 256
#: how long before/after a reset the hit ratios are compared
RESET_WINDOW_S = 6 * 3600.0


def chosen(ctx: ReportContext) -> list[WorkloadInput]:
    picked = [w for w in ctx.workloads
              if (w.trace.meta or {}).get("events") or len(set(w.trace.models)) > 1]
    return picked or ctx.workloads[:1]


def hierarchy_for(w: WorkloadInput):
    Hierarchy = need("simkv.sizing.levels", "Hierarchy")
    default_levels = need("simkv.sizing.levels", "default_levels")
    chunk = w.trace.block_tokens if w.trace.block_tokens % 16 == 0 else CHUNK_TOKENS
    return Hierarchy(levels=default_levels(hbm_chunk_tokens=chunk, chunk_tokens=chunk))


def _event_lines(ax, events: pd.DataFrame, scale: float) -> None:
    for e in events.itertuples():
        color = "#C44E52" if "reset" in e.kind else "#888888"
        ax.axvline(e.applied_at_s / scale, color=color, ls="--", lw=0.8)


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, "Lifecycle and visibility")
    sec.intro = ("What the storage holds over time: utilization per level (GPU HBM, CPU DRAM, "
                 "local NVMe, persistent bucket), bytes by model, stale bytes left behind by a "
                 "prompt change, and what a reset does.")
    try:
        simulate_levels = need("simkv.sizing.hierarchy", "simulate_levels")
    except Missing as exc:
        sec.status = "unavailable"
        sec.mark_missing(f"lifecycle and visibility: {exc}")
        return sec
    levels_text = None
    for w in chosen(ctx):
        h = hierarchy_for(w)
        levels_text = ", ".join(f"{lv.name} {fmt.size(lv.capacity_bytes)}" for lv in h.levels)
        res = simulate_levels(w.trace, h)
        slug = _slug(w.name)
        tl = res.timeline.copy()
        tl.insert(0, "workload", w.name)
        tfile = ctx.write_data(f"lifecycle_timeline_{slug}", tl)
        ev = res.events.copy()
        if not ev.empty:
            ev["params"] = ev["params"].astype(str)
        ev.insert(0, "workload", w.name)
        efile = ctx.write_data(f"lifecycle_events_{slug}", ev)
        span = float(tl["time_s"].max() - tl["time_s"].min()) if len(tl) else 0.0
        unit, scale = ("days", 86400.0) if span > 2 * 86400 else ("hours", 3600.0)
        has_stale = bool((tl["stale_bytes"] > 0).any())
        with new_figure(1, 2 if has_stale else 1, figsize=(8.5 if has_stale else 6.0, 3.4),
                        squeeze=False) as (fig, axes):
            ax1 = axes[0, 0]
            for lv, g in tl.groupby("level", sort=False):
                ax1.plot(g["time_s"] / scale, g["utilization"] * 100, label=str(lv))
                if has_stale:
                    axes[0, 1].plot(g["time_s"] / scale, g["stale_bytes"] / 2**30, label=str(lv))
            for ax in axes[0]:
                _event_lines(ax, res.events, scale)
                ax.set_xlabel(f"time ({unit})")
            ax1.set_ylabel("utilization (%)")
            ax1.legend(fontsize=7)
            if has_stale:
                axes[0, 1].set_ylabel("stale bytes (GiB)")
            caption = ("Share of each level's capacity in use"
                       + (" (left) and bytes held by entries no request can hit any more after a "
                          "prompt change (right)" if has_stale else " (no prompt change in this "
                          "window, so no stale bytes)")
                       + (f"; dashed grey: template changes, dashed red: resets (events in {efile})."
                          if not res.events.empty else "."))
            sec.figures.append(ctx.figure(
                KEY, fig, title=f"{w.name}: utilization" + (" and stale bytes" if has_stale else "")
                + " per storage level", caption=caption, data_file=tfile, basis="modelled"))
        if len(set(w.trace.models)) > 1:
            bm = res.bytes_by_model.copy()
            bm.insert(0, "workload", w.name)
            bfile = ctx.write_data(f"lifecycle_bytes_by_model_{slug}", bm)
            last_level = h.levels[-1].name
            sub = bm[bm["level"] == last_level].pivot_table(index="time_s", columns="model",
                                                             values="bytes", aggfunc="sum").fillna(0)
            with new_figure() as (fig, ax):
                ax.stackplot(sub.index / scale, *(sub[c] / 2**30 for c in sub.columns),
                             labels=[str(c) for c in sub.columns])
                ax.set_xlabel(f"time ({unit})")
                ax.set_ylabel(f"bytes in {last_level} (GiB)")
                ax.legend(fontsize=7, loc="upper left")
                sec.figures.append(ctx.figure(
                    KEY, fig, title=f"{w.name}: bytes by model in the {last_level}",
                    caption="KV bytes each model holds in the persistent level over time.",
                    data_file=bfile, basis="modelled"))
            final = sub.iloc[-1].sort_values(ascending=False)
            sec.readings.append(f"{w.name}: at the end of the window the {last_level} holds "
                                + ", ".join(f"{fmt.size(v)} for {m}" for m, v in final.items()) + ".")
        comp = res.components.copy()
        comp.insert(0, "workload", w.name)
        cfile = ctx.write_data(f"lifecycle_components_{slug}", comp)
        sec.tables.append(Table(f"{w.name}: hit rate by prompt component",
                                ("component", "input tokens", "hit tokens", "hit rate"),
                                tuple((r.component, f"{r.input_tokens:,}", f"{r.hit_tokens:,}",
                                       fmt.pct(r.hit_ratio)) for r in comp.itertuples()),
                                data_file=cfile))
        _readings(sec, w, res, tl, h.levels)
    sec.assumptions.append(f"Storage levels (defaults of simkv.sizing.levels): {levels_text}; "
                           "inclusive placement, promotion on hit, demotion on eviction; every level "
                           "holds whole 256-token chunks (vLLM's HBM uses 16-token blocks).")
    return sec


def _readings(sec: Section, w: WorkloadInput, res, tl: pd.DataFrame, levels) -> None:
    s = res.summary
    peak = tl.loc[tl["stale_bytes"].idxmax()] if len(tl) else None
    text = f"{w.name}: the levels together serve {fmt.pct(s['token_hit_ratio'])} of input tokens."
    if peak is not None and peak["stale_bytes"] > 0:
        text += (f" Stale bytes peak at {fmt.size(peak['stale_bytes'])} in {peak['level']} "
                 f"({fmt.pct(peak['stale_bytes'] / peak['capacity_bytes'] if peak['capacity_bytes'] else 0)} "
                 "of it) after the prompt changes: space that holds nothing usable until evicted or reset.")
    sec.readings.append(text)
    ev = res.events
    rec = res.records
    persistent = [lv.name for lv in levels if lv.persistent] or [levels[-1].name]
    for e in ev[ev["kind"].str.contains("reset")].itertuples():
        t = float(e.applied_at_s)
        params = e.params if isinstance(e.params, dict) else {}
        level = params.get("level") or persistent[-1]
        lt = tl[tl["level"] == level]
        t_nominal = float(e.time_s)  # the storage view samples the state at the event's time
        before, after = lt[lt["time_s"] < t_nominal], lt[lt["time_s"] >= t_nominal]
        if before.empty or after.empty:
            continue
        b, a = before.iloc[-1], after.iloc[0]
        pre = rec[(rec["arrival_s"] >= t - RESET_WINDOW_S) & (rec["arrival_s"] < t)]
        post = rec[(rec["arrival_s"] >= t) & (rec["arrival_s"] < t + RESET_WINDOW_S)]
        hr = [float(x["hit_tokens"].sum() / x["input_tokens"].sum()) if len(x) else np.nan
              for x in (pre, post)]
        sec.readings.append(
            f"{w.name}: the reset of the {level} at {fmt.duration(t)} empties it ({fmt.size(b['used_bytes'])} "
            f"in use, {fmt.size(b['stale_bytes'])} of it stale, just before; {fmt.size(a['used_bytes'])} "
            f"just after); the token hit rate is {fmt.pct(hr[0])} in the {fmt.duration(RESET_WINDOW_S)} "
            f"before it and {fmt.pct(hr[1])} in the {fmt.duration(RESET_WINDOW_S)} after, while the "
            "cache refills (faster levels still hold the hot prefixes).")


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return out.strip("_") or "workload"
