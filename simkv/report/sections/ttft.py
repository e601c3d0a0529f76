"""Section 6: TTFT predicted per cache choice and, where measured results exist, predicted vs
measured on a real engine (hit rate and TTFT) with errors.

Predictions come from the latency model and SimPy serving simulation (simkv.latency); the
measured figures from ``simkv-harness validate`` results (a replay on vLLM).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from simkv.cache import CacheConfig
from simkv.report import fmt
from simkv.report.deps import need
from simkv.report.explorer.replicas import MAX_REPLICAS, report_slo_s, sized_ttft
from simkv.report.figures import new_figure
from simkv.report.model import Missing, ReportContext, Section, Table
from simkv.report.sections.common import working_set_bytes

KEY = "ttft"
GPU = "H100"
#: HBM prefix cache per replica, as a share of the workload's working set
HBM_SHARE = 0.05
#: cache choices: (label, tier serving the hits, bucket size as a share of the working set
#: (None = unlimited), whether an HBM prefix cache sits in front)
CHOICES = (("no cache", "hbm", 0.0, False),
           (f"HBM prefix cache ({HBM_SHARE:.0%} of working set)", "hbm", HBM_SHARE, False),
           ("HBM + CPU DRAM (25% of working set)", "cpu", 0.25, True),
           ("HBM + remote bucket (unlimited)", "remote", None, True))
#: keys of ``simkv-harness validate --json`` the report reads
MEASURED_KEYS = ("predicted_prefix_hit_ratio", "measured_prefix_hit_ratio",
                 "predicted_ttft_p50_s", "measured_ttft_p50_s")
HOW_TO_MEASURE = ("run `make report` without QUICK=1 (it replays a small workload on the CPU vLLM "
                  "through `simkv-harness validate`), or pass `--measured RESULTS.json` from your "
                  "own `simkv-harness validate --json` run")


def _predicted(ctx: ReportContext, sec: Section) -> None:
    rows, dist = [], []
    slo = report_slo_s(ctx.options)  # replicas are sized to the load: fewest meeting p90 <= slo
    for w in ctx.workloads:
        ws = working_set_bytes(ctx, w)
        hbm = CacheConfig(capacity_bytes=int(ws * HBM_SHARE))
        for label, tier, frac, front in CHOICES:
            cfg = (CacheConfig() if frac is None else CacheConfig(capacity_bytes=int(ws * frac))
                   if frac > 0 else CacheConfig(capacity_blocks=0))
            sized = sized_ttft(w.trace, cfg, slo_p90_s=slo, gpu=GPU, tier=tier,
                               hbm_cache=hbm if front else None)
            rec = sized.records
            s = sized.summary
            rows.append({"workload": w.name, "choice": label, "tier": tier, "gpu": GPU,
                         "replicas": sized.replicas, "meets_slo": sized.meets,
                         "slo_p90_s": slo, "serving": sized.describe(GPU),
                         "loaded_tokens": s.get("loaded_tokens"),
                         "load_beats_recompute_share": s.get("load_beats_recompute_share"),
                         "queue_p90_s": s.get("queue_p90_s"),
                         "capacity_bytes": cfg.capacity_bytes,
                         "prefix_token_hit_ratio": s.get("prefix_token_hit_ratio"),
                         "ttft_p50_s": sized.ttft_p50_s, "ttft_p90_s": sized.ttft_p90_s,
                         "ttft_p99_s": sized.ttft_p99_s})
            q = np.linspace(0, 1, 101)
            dist.append(pd.DataFrame({"workload": w.name, "choice": label, "quantile": q,
                                      "ttft_s": np.quantile(rec["ttft_s"].to_numpy(), q)}))
    frame = pd.DataFrame(rows)
    data = ctx.write_data("ttft_predicted", frame)
    dframe = pd.concat(dist, ignore_index=True)
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
                caption=(f"Distribution of predicted TTFT (queueing included) for each cache "
                         f"choice, each on the fewest {GPU} replicas meeting TTFT p90 <= "
                         f"{slo:g} s (replicas per choice in {data}); the analytic latency "
                         "model (not calibrated on this hardware)."),
                data_file=dfile, basis="modelled"))
    for wl, g in frame.groupby("workload", sort=False):
        base = g.iloc[0]
        best = g.loc[g["ttft_p90_s"].idxmin()]
        for r in g.itertuples():
            if not r.meets_slo:
                sec.readings.append(f"{wl}: with {r.choice}, the load {r.serving}.")
        sec.readings.append(
            f"{wl}: p90 TTFT {fmt.ms(base['ttft_p90_s'])} with no cache on {base['replicas']} {GPU} vs "
            f"{fmt.ms(best['ttft_p90_s'])} with {best['choice']} on {best['replicas']} "
            f"(p50 {fmt.ms(base['ttft_p50_s'])} -> {fmt.ms(best['ttft_p50_s'])}).")
    sec.headline = _headline(frame, slo)
    tiers = need("simkv.latency.hardware", "TIERS")
    sec.assumptions.append(
        f"Latency: analytic model on {GPU} replicas, as many as the fewest meeting TTFT p90 <= "
        f"{slo:g} s (searched up to {MAX_REPLICAS}), one request at a time per "
        f"engine step budget; HBM prefix cache = {HBM_SHARE:.0%} of each workload's working set. "
        "KV load bandwidths: " + "; ".join(f"{t}: {tiers.get(t).source}" for t in ("cpu", "remote")) + ".")
    sec.tables.append(Table("Predicted TTFT percentiles at replicas sized to the load",
                            ("workload", "choice", "replicas", "hit", "p50", "p90", "p99"),
                            tuple((r.workload, r.choice,
                                   f"{r.replicas}" + ("" if r.meets_slo else " (SLO not met)"),
                                   fmt.pct(r.prefix_token_hit_ratio),
                                   fmt.ms(r.ttft_p50_s), fmt.ms(r.ttft_p90_s), fmt.ms(r.ttft_p99_s))
                                  for r in frame.itertuples()), data_file=data))


def _span(replicas: pd.Series) -> str:
    lo, hi = int(replicas.min()), int(replicas.max())
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _headline(frame: pd.DataFrame, slo: float) -> str:
    """The section's answer in one sentence: who can be served, without and with a cache."""
    base = frame.groupby("workload", sort=False).head(1)
    best = frame.loc[frame.groupby("workload", sort=False)["ttft_p90_s"].idxmin()]
    no = base[~base["meets_slo"]]["workload"].tolist()
    text = f"Sized to TTFT p90 <= {slo:g} s: "
    text += (f"without a cache {len(no)} of {len(base)} workloads cannot meet it on any "
             f"replica count up to {MAX_REPLICAS} ({', '.join(no)})" if no else
             f"every workload meets it without a cache on {_span(base['replicas'])} {GPU}")
    ok = best[best["meets_slo"]]
    text += (f"; with its best cache choice {len(ok)} of {len(best)} meet it, on "
             f"{_span(ok['replicas'])} {GPU}" if len(ok) else
             "; no cache choice makes any of them meet it")
    return text + "."


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


def _measured(ctx: ReportContext, sec: Section) -> None:
    path = ctx.options.measured_path
    if path is None or not Path(path).exists():
        if path is not None:
            why = f"the measured results file {path} does not exist"
        elif ctx.options.quick and ctx.options.offers_replay:
            why = "the measured section was not run (--quick skips the engine replay)"
        elif ctx.options.measured_note:
            why = f"the engine replay did not produce results: {ctx.options.measured_note}"
        else:
            why = "no measured results were given (--measured RESULTS.json)"
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
    sec = Section(KEY, "Time to first token")
    sec.intro = ("A hit saves time as well as money when loading the KV beats recomputing it. "
                 "Predicted TTFT per cache choice at the fewest replicas meeting TTFT p90 <= "
                 f"{report_slo_s(ctx.options):g} s, then simkv's predictions beside a real engine's "
                 "measurements where they exist.")
    try:
        _predicted(ctx, sec)
    except Missing as exc:
        sec.mark_missing(f"predicted TTFT: {exc}")
    _measured(ctx, sec)
    if not sec.figures and not sec.tables:
        sec.status = "not_run" if ctx.options.quick else "unavailable"
    return sec
