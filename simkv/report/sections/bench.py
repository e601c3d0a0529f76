"""Section 7: performance of simkv itself, from the last ``make bench`` (pytest-benchmark JSON).

Only ratios measured side by side in one run are shown (``extra_info`` keys ending ``_ratio``),
next to the committed baseline that ``make bench-check`` enforces (the ``bench`` stage's table).
"""

from __future__ import annotations

import pandas as pd

from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import ReportContext, Section, Table

KEY = "bench"
TITLE = "Performance of simkv itself"
#: the stages whose tables this section reads (its render-cache key covers their outputs)
READS = ('workloads', 'bench')


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, TITLE)
    opts = ctx.options
    sec.intro = ("Ratios from the last `make bench`, measured side by side in one run on the "
                 "machine that ran it (absolute times differ between machines; ratios travel).")
    facts = ctx.run.facts("bench") if ctx.run.has("bench") else {"latest": False}
    if not facts["latest"]:
        sec.status = "not_run"
        sec.readings.append(f"The benchmarks were not run: {opts.bench_path} does not exist. Run "
                            "`make bench` (then `make report` again) to fill this section.")
        return sec
    baseline = facts["baseline"]
    frame = ctx.run.table("bench", "bench_ratios")
    if frame.empty:
        sec.status = "partial"
        sec.mark_missing(f"{opts.bench_path} has no `*_ratio` values in extra_info")
        return sec
    data = ctx.write_data("bench_ratios", frame)
    sec.intro += f" Machine of that run: {facts['cpu']}, Python {facts['python']}."
    if not baseline:
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
