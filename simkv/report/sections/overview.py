"""Section 0: the workloads studied and what an unlimited cache could reuse on each
(tables of the ``simulate`` stage)."""

from __future__ import annotations

from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import ReportContext, Section, Table

KEY = "workloads"
TITLE = "The workloads and what caching could reuse"
#: the stages whose tables this section reads (its render-cache key covers their outputs)
READS = ('workloads', 'simulate')


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, TITLE)
    sec.intro = ("Each workload is a trace of requests with their prefix-chained block hashes. "
                 "Before any tier or price, an unlimited cache with no TTL shows the most reuse "
                 "the traffic allows.")
    if not ctx.workloads:
        sec.status = "unavailable"
        sec.mark_missing("no workload traces: nothing to simulate")
        return sec
    frame = ctx.run.table("simulate", "workloads_summary")
    rows = frame.to_dict("records")
    data = ctx.write_data("workloads_summary", frame)
    sec.tables.append(Table(
        "Workloads", ("workload", "source", "model", "requests", "window", "input tokens",
                      "working set", "unlimited prefix hit"),
        tuple((r["workload"], r["source"], r["model"], f"{r['requests']:,}", fmt.duration(r["window_s"]),
               f"{r['input_tokens']:,}", fmt.size(r["working_set_bytes"]),
               fmt.pct(r["unlimited_prefix_token_hit_ratio"])) for r in rows),
        data_file=data))
    # arrivals per minute over the window
    arr = ctx.run.table("simulate", "workloads_arrivals")
    arr_file = ctx.write_data("workloads_arrivals", arr)
    groups = list(arr.groupby("workload", sort=False))
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    with new_figure(nrows, ncols, figsize=(8.5, 2.2 * nrows + 0.4), squeeze=False) as (fig, axes):
        for ax, (name, g) in zip(axes.flat, groups, strict=False):
            span = float(g["t_start_s"].max())
            unit, div = ("days", 86400.0) if span > 2 * 86400 else ("hours", 3600.0)
            ax.step(g["t_start_s"] / div, g["requests_per_min"], where="post", lw=1)
            ax.set_title(str(name), fontsize=8)
            ax.set_xlabel(f"time ({unit})", fontsize=7)
            ax.set_ylabel("requests / min", fontsize=7)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(groups):]:
            ax.set_visible(False)
        sec.figures.append(ctx.figure(KEY, fig, title="Arrival rate over each trace's window",
                                      caption="Requests per minute, binned (each panel on its own "
                                              "time scale).", data_file=arr_file,
                                      basis="modelled"))
    best = max(rows, key=lambda r: r["unlimited_prefix_token_hit_ratio"])
    worst = min(rows, key=lambda r: r["unlimited_prefix_token_hit_ratio"])
    sec.readings.append(
        f"{len(rows)} workload{'s' if len(rows) > 1 else ''}, "
        f"{sum(r['requests'] for r in rows):,} requests in all.  The most reusable is "
        f"{best['workload']}: an unlimited cache would serve {fmt.pct(best['unlimited_prefix_token_hit_ratio'])} "
        f"of its input tokens from cache"
        + ("." if best is worst else
           f"; the least is {worst['workload']} at {fmt.pct(worst['unlimited_prefix_token_hit_ratio'])}."))
    for r in rows:
        sec.readings.append(
            f"{r['workload']}: {r['requests']:,} requests over {fmt.duration(r['window_s'])}; keeping "
            f"every distinct block would take {fmt.size(r['working_set_bytes'])} of KV for {r['model']}.")
    sec.assumptions.append("Each trace covers a short window of its workload (or a thinned longer one "
                           "where lifecycle events need days: see the source column) so the whole "
                           "report runs in minutes; monthly figures elsewhere extrapolate them.")
    return sec
