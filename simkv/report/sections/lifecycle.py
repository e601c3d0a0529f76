"""Section 5: lifecycle and visibility, the brief's storage view.

Utilization over time per storage level, bytes by model, stale bytes after a prompt (template)
change and what a reset does, from the sizing engine's storage hierarchy replayed with the
workload's lifecycle events: tables of the ``lifecycle`` stage (on the workloads that have
lifecycle events or mix models; on a user's trace: that trace).
"""

from __future__ import annotations

import pandas as pd

from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import ReportContext, Section, Table

KEY = "lifecycle"
TITLE = "Lifecycle and visibility"
#: the stages whose tables this section reads (its render-cache key covers their outputs)
READS = ('workloads', 'lifecycle')


def _event_lines(ax, events: pd.DataFrame, scale: float) -> None:
    for e in events.itertuples():
        color = "#C44E52" if "reset" in e.kind else "#888888"
        ax.axvline(e.applied_at_s / scale, color=color, ls="--", lw=0.8)


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, TITLE)
    sec.intro = ("What the storage holds over time: utilization per level (GPU HBM, CPU DRAM, "
                 "local NVMe, persistent bucket), bytes by model, stale bytes left behind by a "
                 "prompt change, and what a reset does.")
    if not ctx.run.has("lifecycle"):
        sec.status = "unavailable"
        sec.mark_missing("lifecycle and visibility: the lifecycle stage did not run")
        return sec
    facts = ctx.run.facts("lifecycle")
    resets = ctx.run.table("lifecycle", "resets")
    levels_text = None
    for run in facts["runs"]:
        slug, name = run["slug"], run["workload"]
        levels = run["levels"]
        levels_text = ", ".join(f"{lv['name']} {fmt.size(lv['capacity_bytes'])}" for lv in levels)
        tl = ctx.run.table("lifecycle", f"timeline_{slug}")
        tfile = ctx.write_data(f"lifecycle_timeline_{slug}", tl)
        ev = ctx.run.table("lifecycle", f"events_{slug}")
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
                _event_lines(ax, ev, scale)
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
                          if not ev.empty else "."))
            sec.figures.append(ctx.figure(
                KEY, fig, title=f"{name}: utilization" + (" and stale bytes" if has_stale else "")
                + " per storage level", caption=caption, data_file=tfile, basis="modelled"))
        if len(set(run["models"])) > 1:
            bm = ctx.run.table("lifecycle", f"bytes_by_model_{slug}")
            bfile = ctx.write_data(f"lifecycle_bytes_by_model_{slug}", bm)
            last_level = levels[-1]["name"]
            sub = bm[bm["level"] == last_level].pivot_table(index="time_s", columns="model",
                                                             values="bytes", aggfunc="sum").fillna(0)
            with new_figure() as (fig, ax):
                ax.stackplot(sub.index / scale, *(sub[c] / 2**30 for c in sub.columns),
                             labels=[str(c) for c in sub.columns])
                ax.set_xlabel(f"time ({unit})")
                ax.set_ylabel(f"bytes in {last_level} (GiB)")
                ax.legend(fontsize=7, loc="upper left")
                sec.figures.append(ctx.figure(
                    KEY, fig, title=f"{name}: bytes by model in the {last_level}",
                    caption="KV bytes each model holds in the persistent level over time.",
                    data_file=bfile, basis="modelled"))
            final = sub.iloc[-1].sort_values(ascending=False)
            sec.readings.append(f"{name}: at the end of the window the {last_level} holds "
                                + ", ".join(f"{fmt.size(v)} for {m}" for m, v in final.items()) + ".")
        comp = ctx.run.table("lifecycle", f"components_{slug}")
        cfile = ctx.write_data(f"lifecycle_components_{slug}", comp)
        sec.tables.append(Table(f"{name}: hit rate by prompt component",
                                ("component", "input tokens", "hit tokens", "hit rate"),
                                tuple((r.component, f"{r.input_tokens:,}", f"{r.hit_tokens:,}",
                                       fmt.pct(r.hit_ratio)) for r in comp.itertuples()),
                                data_file=cfile))
        _readings(sec, run, tl, resets[resets["workload"] == name], facts["reset_window_s"])
    sec.assumptions.append(f"Storage levels (defaults of simkv.sizing.levels): {levels_text}; "
                           "inclusive placement, promotion on hit, demotion on eviction; every level "
                           "holds whole 256-token chunks (vLLM's HBM uses 16-token blocks).")
    return sec


def _readings(sec: Section, run: dict, tl: pd.DataFrame, resets: pd.DataFrame,
              window_s: float) -> None:
    name = run["workload"]
    peak = tl.loc[tl["stale_bytes"].idxmax()] if len(tl) else None
    text = f"{name}: the levels together serve {fmt.pct(run['token_hit_ratio'])} of input tokens."
    if peak is not None and peak["stale_bytes"] > 0:
        text += (f" Stale bytes peak at {fmt.size(peak['stale_bytes'])} in {peak['level']} "
                 f"({fmt.pct(peak['stale_bytes'] / peak['capacity_bytes'] if peak['capacity_bytes'] else 0)} "
                 "of it) after the prompt changes: space that holds nothing usable until evicted or reset.")
    sec.readings.append(text)
    for e in resets.itertuples():
        t, level = float(e.applied_at_s), e.level
        lt = tl[tl["level"] == level]
        t_nominal = float(e.time_s)  # the storage view samples the state at the event's time
        before, after = lt[lt["time_s"] < t_nominal], lt[lt["time_s"] >= t_nominal]
        if before.empty or after.empty:
            continue
        b, a = before.iloc[-1], after.iloc[0]
        hr = (e.hit_ratio_before, e.hit_ratio_after)
        sec.readings.append(
            f"{name}: the reset of the {level} at {fmt.duration(t)} empties it ({fmt.size(b['used_bytes'])} "
            f"in use, {fmt.size(b['stale_bytes'])} of it stale, just before; {fmt.size(a['used_bytes'])} "
            f"just after); the token hit rate is {fmt.pct(hr[0])} in the {fmt.duration(window_s)} "
            f"before it and {fmt.pct(hr[1])} in the {fmt.duration(window_s)} after, while the "
            "cache refills (faster levels still hold the hot prefixes).")
