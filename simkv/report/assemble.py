"""Render a run folder into a report: sections (in order) -> data files, provenance, HTML, Markdown.

The renderer's whole input is the run folder the stages wrote (``simkv.pipeline``; read through
:class:`~simkv.report.runview.RunView`) and the report options; it imports no simulator module.
The only wall-clock readings are the timings kept in ``data/provenance.json``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

import simkv
from simkv.report import provenance as prov
from simkv.report.model import ReportContext, ReportOptions, Section
from simkv.report.render import render
from simkv.report.runview import RunView, StageMissing
from simkv.report.sectioncache import cached_build


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    html: Path
    markdown: Path
    sections: tuple[Section, ...]
    data_files: tuple[str, ...]


def _none(v: Any) -> Any:
    """A table value as JSON would have it (missing -> None, numpy scalars -> Python)."""
    if v is None or pd.isna(v):
        return None
    return v.item() if hasattr(v, "item") else v


def _inputs(run: RunView) -> list[dict]:
    if not run.has("workloads"):
        return []
    return [{"name": r.name, "source": r.source, "sha256": r.sha256, "seed": _none(r.seed),
             "model": r.model, "requests": int(r.requests)}
            for r in run.table("workloads", "workloads").itertuples()]


def _pricebooks(run: RunView) -> list[dict]:
    if not run.has_table("bills", "pricebooks"):
        return []
    return [{k: _none(v) for k, v in row.items()}
            for row in run.table("bills", "pricebooks").to_dict("records")]


def _engine(run: RunView) -> dict:
    return dict(run.facts("measured").get("engine") or {}) if run.has("measured") else {}


def _section(ctx: ReportContext, build) -> Section:
    """One section (from the render cache when nothing it reads changed); a section whose
    stage did not run in this run folder says so instead of failing the report."""
    module = sys.modules[build.__module__]
    try:
        return cached_build(ctx, module.KEY, build.__module__, module.READS, build)
    except StageMissing as exc:
        return Section(module.KEY, module.TITLE, status="unavailable", missing=[str(exc)])


def render_run(run_dir: Path, out_dir: Path, options: ReportOptions, *, progress=None,
               subtitle: str = "", timings: dict[str, float] | None = None,
               started_s: float | None = None) -> ReportResult:
    """Build every section from the run in ``run_dir`` and write the report under ``out_dir``.

    ``progress`` is anything with ``stage(label)`` and ``advance()`` (or None)."""
    from simkv.report.sections import SECTIONS

    t_start = started_s if started_s is not None else time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = RunView(run_dir)
    ctx = ReportContext(out_dir, run, options)
    timings = dict(timings or {})
    sections = []
    for label, build in SECTIONS:
        if progress is not None:
            progress.stage(f"rendering: {label}")
        t0 = time.perf_counter()
        sections.append(_section(ctx, build))
        timings[f"rendering: {label}"] = round(time.perf_counter() - t0, 3)
        if progress is not None:
            progress.advance()
    if progress is not None:
        progress.stage("writing the report")
    record = {
        "simkv_version": simkv.__version__, "git": prov.git_commit(), "command": options.command,
        "seed": options.seed, "quick": options.quick, "days_per_month": options.days_per_month,
        "packages": prov.package_versions(), "engine": _engine(run), "inputs": _inputs(run),
        "pricebooks": _pricebooks(run),
        "sections": [{"key": s.key, "title": s.title, "status": s.status, "missing": s.missing}
                     for s in sections],
        "data_files": sorted(ctx.data_files),
    }
    mode = ("quick run (--quick): smaller grids, no engine replay" if options.quick
            else "full run")
    html, md = render(out_dir, sections=sections, provenance=record, title=options.title,
                      subtitle=subtitle, mode=mode)
    if progress is not None:
        progress.advance()
    timings["writing the report"] = round(time.perf_counter() - t_start - sum(timings.values()), 3)
    wall = {"generated_at_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "stage_wall_s": timings, "total_wall_s": round(time.perf_counter() - t_start, 3)}
    prov.write_provenance(out_dir / prov.PROVENANCE_FILE, {**record, **wall})
    return ReportResult(out_dir, html, md, tuple(sections), tuple(sorted(ctx.data_files)))
