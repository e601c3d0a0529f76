"""Section 7: performance of simkv itself, from the last ``make bench`` (pytest-benchmark JSON).

Only ratios measured side by side in one run are shown (``extra_info`` keys ending ``_ratio``),
next to the committed baseline that ``make bench-check`` enforces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from simkv.bench_check import latest_ratios
from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import ReportContext, Section, Table

KEY = "bench"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def bench_frame(latest: dict, baseline: dict | None) -> pd.DataFrame:
    """One row per (benchmark, ratio): measured value, baseline, margin and goal when known."""
    rows = []
    ratios = latest_ratios(latest)
    for name in sorted(ratios):
        for key in sorted(ratios[name]):
            ref = (baseline or {}).get(name, {}).get(key, {})
            rows.append({
                "benchmark": name, "ratio": key, "value": ratios[name][key],
                "baseline": ref.get("value"), "direction": ref.get("direction", "higher"),
                "margin": ref.get("margin"), "goal": ref.get("goal"),
            })
    return pd.DataFrame(rows, columns=["benchmark", "ratio", "value", "baseline", "direction",
                                       "margin", "goal"])


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, "Performance of simkv itself")
    opts = ctx.options
    sec.intro = ("Ratios from the last `make bench`, measured side by side in one run on the "
                 "machine that ran it (absolute times differ between machines; ratios travel).")
    latest = _read_json(opts.bench_path)
    if latest is None:
        sec.status = "not_run"
        sec.readings.append(f"The benchmarks were not run: {opts.bench_path} does not exist. Run "
                            "`make bench` (then `make report` again) to fill this section.")
        return sec
    baseline = _read_json(opts.baseline_path)
    frame = bench_frame(latest, baseline)
    if frame.empty:
        sec.status = "partial"
        sec.mark_missing(f"{opts.bench_path} has no `*_ratio` values in extra_info")
        return sec
    data = ctx.write_data("bench_ratios", frame)
    machine = latest.get("machine_info", {})
    sec.intro += (f" Machine of that run: {machine.get('cpu', {}).get('brand_raw', 'unknown CPU')}, "
                  f"Python {machine.get('python_version', '?')}.")
    if baseline is None:
        sec.mark_missing(f"no baseline at {opts.baseline_path}: ratios are shown without one")
    sec.tables.append(Table(
        "Benchmark ratios", ("benchmark", "ratio", "measured", "baseline", "goal"),
        tuple((r.benchmark, r.ratio, f"{r.value:.3g}",
               "-" if pd.isna(r.baseline) else f"{r.baseline:.3g}",
               "-" if pd.isna(r.goal) else f"{r.goal:g}") for r in frame.itertuples()),
        data_file=data, basis="measured"))
    labels = [f"{r.benchmark.removeprefix('test_')}\n{r.ratio}" for r in frame.itertuples()]
    with new_figure(figsize=(7.0, 0.5 + 0.45 * len(frame))) as (fig, ax):
        y = range(len(frame))
        ax.barh(list(y), frame["value"], color="#4C72B0", label="measured")
        base = frame["baseline"].astype(float)
        ax.scatter(base, list(y), marker="|", s=300, color="black", label="baseline", zorder=3)
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("ratio (log scale)")
        ax.legend(fontsize=7)
        sec.figures.append(ctx.figure(
            KEY, fig, title="Benchmark ratios" + (" against the committed baseline" if baseline else ""),
            caption="Bars: ratios from the last `make bench`"
                    + (f"; ticks: the baseline in {opts.baseline_path}." if baseline else
                       f" (no baseline at {opts.baseline_path})."),
            data_file=data, basis="measured"))
    for r in frame.itertuples():
        text = f"{r.benchmark}: {r.ratio} = {r.value:.3g}"
        if not pd.isna(r.baseline):
            higher = r.direction != "lower"
            rel = r.value / r.baseline if r.baseline else float("nan")
            text += f" ({fmt.num(rel, 3)}x the baseline {r.baseline:.3g}, {'higher' if higher else 'lower'} is better)"
        if not pd.isna(r.goal):
            met = r.value >= r.goal if r.direction != "lower" else r.value <= r.goal
            text += f"; the issue's goal {r.goal:g} is {'met' if met else 'NOT met'}"
        sec.readings.append(text + ".")
    return sec
