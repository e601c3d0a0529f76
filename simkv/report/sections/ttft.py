"""Section 6: TTFT predicted per cache choice and, where measured results exist, predicted vs
measured on a real engine (hit rate and TTFT) with errors.

Predictions come from the latency model and SimPy serving simulation (the ``latency``
stage's tables); the measured figures from validation results: the ``measured`` stage's replay
on vLLM (the harness's plug-in stage) or a ``--measured RESULTS.json`` file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from simkv.report import fmt
from simkv.report.figures import new_figure
from simkv.report.model import Missing, ReportContext, Section, Table

KEY = "ttft"
TITLE = "Time to first token"
#: the stages whose tables this section reads (its render-cache key covers their outputs)
READS = ('workloads', 'latency', 'measured')
#: keys of ``simkv-harness validate --json`` the report reads
MEASURED_KEYS = ("predicted_prefix_hit_ratio", "measured_prefix_hit_ratio",
                 "predicted_ttft_p50_s", "measured_ttft_p50_s")
HOW_TO_MEASURE = ("run `make report` without QUICK=1 (it replays a small workload on the CPU vLLM "
                  "through `simkv-harness validate`), or pass `--measured RESULTS.json` from your "
                  "own `simkv-harness validate --json` run")


def _predicted(ctx: ReportContext, sec: Section) -> str:
    if not ctx.run.has_table("latency", "ttft_predicted"):
        raise Missing("the latency stage wrote no predictions")
    facts = ctx.run.facts("latency")
    GPU, HBM_SHARE = facts["gpu"], facts["hbm_share"]
    slo = float(facts.get("slo_p90_s") or 2.0)
    REPLICAS = f"the fewest {GPU} replicas meeting TTFT p90 <= {slo:g} s"
    frame = ctx.run.table("latency", "ttft_predicted")
    if "replicas" not in frame or "meets_slo" not in frame:
        raise Missing("the latency stage's predictions predate replica sizing (rerun it)")
    data = ctx.write_data("ttft_predicted", frame)
    dframe = ctx.run.table("latency", "ttft_predicted_cdf")
    dfile = ctx.write_data("ttft_predicted_cdf", dframe)
    for wl, g in dframe.groupby("workload", sort=False):
        with new_figure() as (fig, ax):
            for choice, c in g.groupby("choice", sort=False):
                ax.plot(c["ttft_s"] * 1000, c["quantile"] * 100, label=str(choice))
            ax.set_xscale("log")
            ax.set_xlabel("TTFT (ms, log)")
            ax.set_ylabel("requests at or below (%)")
            ax.legend(fontsize=7)
            sec.figures.append(ctx.figure(
                KEY, fig, title=f"{wl}: predicted TTFT by cache choice",
                caption=(f"Distribution of predicted TTFT (queueing included) at {REPLICAS} "
                         "for each cache choice (or, where none does, where the search "
                         "stopped); the analytic latency model (not calibrated on this "
                         "hardware)."),
                data_file=dfile, basis="modelled"))
    for wl, g in frame.groupby("workload", sort=False):
        base = g.iloc[0]
        best = g.loc[g["ttft_p90_s"].idxmin()]
        for r in g.itertuples():
            if not r.meets_slo:
                sec.readings.append(
                    f"{wl}: with {r.choice}, the load cannot be served within TTFT p90 <= "
                    f"{slo:g} s: at {int(r.replicas)} {GPU} replica(s), where the search stopped, "
                    f"p90 is {fmt.duration(r.ttft_p90_s)}, {r.over_slo_factor:,.1f}x the objective.")
        sec.readings.append(
            f"{wl}: p90 TTFT {fmt.ms(base['ttft_p90_s'])} with no cache on {int(base['replicas'])} "
            f"replica(s) vs {fmt.ms(best['ttft_p90_s'])} with {best['choice']} on "
            f"{int(best['replicas'])} (p50 {fmt.ms(base['ttft_p50_s'])} -> {fmt.ms(best['ttft_p50_s'])}).")
    sources = facts["tier_sources"]
    sec.assumptions.append(
        f"Latency: analytic model at {REPLICAS} (searched by doubling then bisection, "
        "prefix-aware routing with a cache, least-loaded without), one request at a time per "
        f"engine step budget; HBM prefix cache = {HBM_SHARE:.0%} of each workload's working set. "
        "KV load bandwidths: " + "; ".join(f"{t}: {sources[t]}" for t in ("cpu", "remote")) + ".")
    if facts.get("gpu_profile"):
        sec.assumptions.append(str(facts["gpu_profile"]) + ".")
    sec.tables.append(Table(
        f"Predicted TTFT percentiles at {REPLICAS}",
        ("workload", "choice", "hit", "replicas", "p50", "p90", "p99"),
        tuple((r.workload, r.choice, fmt.pct(r.prefix_token_hit_ratio),
               fmt.replicas(r.replicas, r.meets_slo, r.over_slo_factor),
               fmt.ms(r.ttft_p50_s), fmt.ms(r.ttft_p90_s), fmt.ms(r.ttft_p99_s))
              for r in frame.itertuples()), data_file=data))
    return _headline(frame, facts, slo)


def _headline(frame: pd.DataFrame, facts: dict, slo: float) -> str:
    """The section's first sentence: replicas per workload at the objective, or unservable."""
    gpu = facts["gpu"]
    parts = []
    for wl, g in frame.groupby("workload", sort=False):
        base = g.iloc[0]
        ok = g[g["meets_slo"].astype(bool)]
        if ok.empty:
            worst = float(g["over_slo_factor"].min())
            parts.append(f"{wl} cannot be served with any cache choice (p90 at best "
                         f"{worst:,.1f}x the objective)")
            continue
        best = ok.sort_values(["replicas", "ttft_p90_s"], kind="stable").iloc[0]
        no_cache = (f"{int(base['replicas'])} without a cache" if bool(base["meets_slo"])
                    else f"unservable without a cache ({float(base['over_slo_factor']):,.1f}x "
                         "the objective)")
        parts.append(f"{wl} needs {int(best['replicas'])} {gpu} replica(s) with "
                     f"{best['choice']} ({no_cache})")
    return (f"At TTFT p90 <= {slo:g} s (the objective replicas are sized to), "
            + "; ".join(parts) + ".")


def load_measured(path: Path) -> list[dict]:
    """Validation results: one JSON object or a list of them (``simkv-harness validate --json``)."""
    obj = json.loads(Path(path).read_text())
    items = obj if isinstance(obj, list) else [obj]
    out = []
    for i, item in enumerate(items):
        missing = [k for k in MEASURED_KEYS if k not in item]
        if missing:
            from simkv.errors import InputError

            raise InputError(f"validation result lacks {', '.join(missing)}", source=path,
                             where=f"item {i}")
        out.append(item)
    return out


def measured_source(ctx: ReportContext) -> tuple[Path | None, str]:
    """The validation results to show (``--measured FILE``, else the measured stage's) and,
    when there are none, why the measured stage produced none."""
    if ctx.options.measured_path is not None or not ctx.run.has("measured"):
        return ctx.options.measured_path, ctx.options.measured_note
    facts = ctx.run.facts("measured")
    if facts.get("results"):
        return ctx.run.path("measured", facts["results"]), ""
    return None, str(facts.get("reason") or "")


def _absent_reason(ctx: ReportContext, path: Path | None, note: str) -> str:
    """Why there are no measured results to show."""
    if path is not None:
        return f"the measured results file {path} does not exist"
    if ctx.options.quick and ctx.options.offers_replay:
        return "the measured section was not run (--quick skips the engine replay)"
    if note:
        return f"the engine replay did not produce results: {note}"
    return "no measured results were given (--measured RESULTS.json)"


def _measured(ctx: ReportContext, sec: Section) -> None:
    path, note = measured_source(ctx)
    if path is None or not Path(path).exists():
        why = _absent_reason(ctx, path, note)
        sec.readings.append(f"Predicted vs measured: {why}. To fill it, {HOW_TO_MEASURE}.")
        if sec.status == "ok":
            sec.status = "partial"
        sec.missing.append(f"measured results: {why}")
        return
    items = load_measured(path)
    rows = []
    for it in items:
        for metric, p, m in (("prefix hit ratio", "predicted_prefix_hit_ratio", "measured_prefix_hit_ratio"),
                             ("TTFT p50 (s)", "predicted_ttft_p50_s", "measured_ttft_p50_s"),
                             ("TTFT p90 (s)", "predicted_ttft_p90_s", "measured_ttft_p90_s"),
                             ("external hit ratio", "predicted_external_hit_ratio",
                              "measured_external_hit_ratio")):
            if it.get(p) is None or it.get(m) is None:
                continue
            pv, mv = float(it[p]), float(it[m])
            rows.append({"label": str(it.get("label", it.get("trace", "replay"))), "metric": metric,
                         "predicted": pv, "measured": mv, "abs_error": pv - mv,
                         "rel_error": (pv - mv) / mv if mv else None,
                         "requests": it.get("requests_sent", it.get("requests"))})
    frame = pd.DataFrame(rows)
    data = ctx.write_data("measured_vs_predicted", frame)
    sec.tables.append(Table("Predicted vs measured on a real engine",
                            ("replay", "metric", "predicted", "measured", "error"),
                            tuple((r.label, r.metric, f"{r.predicted:.4g}", f"{r.measured:.4g}",
                                   f"{r.abs_error:+.4g}" + ("" if r.rel_error is None or pd.isna(r.rel_error)
                                                          else f" ({100 * r.rel_error:+.1f}%)"))
                                  for r in frame.itertuples()),
                            data_file=data, basis="measured and modelled"))
    hit = frame[~frame["metric"].str.startswith("TTFT")]
    ttft = frame[frame["metric"].str.startswith("TTFT")]
    panels = [(hit, "ratio", 1.0), (ttft, "TTFT (ms)", 1000.0)]
    panels = [p for p in panels if not p[0].empty]
    with new_figure(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False) as (fig, axes):
        for ax, (part, ylabel, scale) in zip(axes[0], panels, strict=True):
            x = np.arange(len(part))
            ax.bar(x - 0.2, part["predicted"] * scale, 0.4, label="predicted (simkv)")
            ax.bar(x + 0.2, part["measured"] * scale, 0.4, label="measured (engine)")
            ax.set_xticks(x)
            ax.set_xticklabels(part["metric"], fontsize=7)
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=7)
        sec.figures.append(ctx.figure(
            KEY, fig, title="Predicted vs measured on the CPU engine",
            caption=(f"simkv's prediction beside the engine's measurement for the same replay "
                     f"({Path(path).name}): prefix hit ratios (left) and TTFT percentiles (right)."),
            data_file=data, basis="measured and modelled"))
    for r in frame.itertuples():
        rel = "" if r.rel_error is None or pd.isna(r.rel_error) else f", {100 * r.rel_error:+.1f}%"
        sec.readings.append(f"{r.label}: {r.metric} predicted {r.predicted:.4g}, measured {r.measured:.4g} "
                            f"(error {r.abs_error:+.4g}{rel}) over {r.requests} requests sent one at a time.")
    for it in items:
        fit = it.get("calibration_fit")
        if it.get("calibration_note"):
            text = str(it["calibration_note"])
            if fit:
                text += (f"; the fit's error on its own held-back records: MAPE {fmt.pct(fit.get('mape'))}, "
                         f"p90 {fmt.pct(fit.get('p90_abs_rel_error'))}")
            sec.readings.append(text + ".")
        elif it.get("ttft_note"):
            sec.readings.append(f"TTFT: {it['ttft_note']}.")
    sec.assumptions.append("Measured figures come from one replay on vLLM's CPU build with a tiny "
                           "random-weight model: they check simkv's cache and latency modelling, "
                           "not production speed. Measured TTFTs are wall-clock and vary run to run.")


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, TITLE)
    sec.intro = ("A hit saves time as well as money when loading the KV beats recomputing it. "
                 "Predicted TTFT per cache choice, then simkv's predictions beside a real engine's "
                 "measurements where they exist.")
    try:
        sec.headline = _predicted(ctx, sec)
        profile = ctx.run.facts("latency").get("gpu_profile")
        if profile:
            sec.intro = f"{profile}. {sec.intro}"
    except Missing as exc:
        sec.mark_missing(f"predicted TTFT: {exc}")
    _measured(ctx, sec)
    if not sec.figures and not sec.tables:
        sec.status = "not_run" if ctx.options.quick else "unavailable"
    return sec
