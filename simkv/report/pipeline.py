"""The report pipeline: inputs -> sections (in order) -> data files, provenance, HTML, Markdown.

Shared by ``python -m simkv.report.make_report`` (the project's example workloads) and
``simkv report`` (a user's trace).  Stages report to a :class:`Progress`; the only wall-clock
readings are the stage timings kept for ``data/provenance.json``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import simkv
from simkv.report.model import Missing, ReportContext, ReportOptions, Section, WorkloadInput
from simkv.report.provenance import (
    PROVENANCE_FILE,
    engine_versions,
    git_commit,
    package_versions,
    write_provenance,
)
from simkv.report.render import render


class Progress:
    """Stage progress: a rich bar on a terminal, one line per stage otherwise, or silence."""

    def __init__(self, total: int, *, enabled: bool = True, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total = total
        self.done = 0
        self._rich = None
        self._task = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(TextColumn("[bold]report[/bold] {task.description}"),
                                      BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=Console(file=self.stream), transient=False)

    def __enter__(self) -> Progress:
        if self._rich is not None:
            self._rich.start()
            self._task = self._rich.add_task("starting", total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()

    def stage(self, label: str) -> None:
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, description=label)
        else:
            self.stream.write(f"simkv report [{self.done + 1}/{self.total}] {label}\n")
            self.stream.flush()

    def advance(self) -> None:
        self.done += 1
        if self._rich is not None:
            self._rich.update(self._task, advance=1)


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    html: Path
    markdown: Path
    sections: tuple[Section, ...]
    data_files: tuple[str, ...]


def pricebook_provenance(ctx: ReportContext) -> list[dict]:
    books = ctx.cache.get("books")
    if books is None:
        try:
            from simkv.report.sections.bills import books as load_books

            books = load_books(ctx)
        except Missing:  # the bills section says why
            return []
    return [{"name": b.name, "kind": b.kind, "as_of": b.as_of, "source": b.source,
             "placeholder": bool(b.placeholder)} for b in books]


def run_sections(ctx: ReportContext, progress: Progress,
                 builders: tuple[tuple[str, Callable[[ReportContext], Section]], ...],
                 timings: dict[str, float]) -> list[Section]:
    out = []
    for label, build in builders:
        progress.stage(label)
        t0 = time.perf_counter()
        out.append(build(ctx))
        timings[label] = round(time.perf_counter() - t0, 3)
        progress.advance()
    return out


def build_report(out_dir: Path, workloads: list[WorkloadInput], options: ReportOptions, *,
                 progress: Progress | None = None, subtitle: str = "",
                 extra_timings: dict[str, float] | None = None,
                 extra_inputs: list[dict] | None = None,
                 engine_python: Path | None = None, started_s: float | None = None) -> ReportResult:
    """Build every section for ``workloads`` and write the report under ``out_dir``."""
    from simkv.report.sections import SECTIONS

    t_start = started_s if started_s is not None else time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = ReportContext(out_dir, workloads, options)
    progress = progress or Progress(len(SECTIONS) + 1, enabled=False)
    timings: dict[str, float] = dict(extra_timings or {})
    sections = run_sections(ctx, progress, SECTIONS, timings)
    progress.stage("writing the report")
    inputs = list(extra_inputs or []) + [
        {"name": w.name, "source": w.source, "sha256": w.sha256,
         "seed": getattr(w.spec, "seed", None), "model": w.model,
         "requests": int(w.trace.n_requests)} for w in workloads]
    provenance = {
        "simkv_version": simkv.__version__,
        "git": git_commit(),
        "command": options.command,
        "seed": options.seed,
        "quick": options.quick,
        "days_per_month": options.days_per_month,
        "packages": package_versions(),
        "engine": engine_versions(engine_python) if engine_python else {},
        "inputs": inputs,
        "pricebooks": pricebook_provenance(ctx),
        "sections": [{"key": s.key, "title": s.title, "status": s.status, "missing": s.missing}
                     for s in sections],
        "data_files": sorted(ctx.data_files),
    }
    mode = ("quick run (--quick): smaller grids, no engine replay" if options.quick
            else "full run")
    html, md = render(out_dir, sections=sections, provenance=provenance, title=options.title,
                      subtitle=subtitle, mode=mode)
    progress.advance()
    timings["writing the report"] = round(time.perf_counter() - t_start - sum(timings.values()), 3)
    wall = {
        "generated_at_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "stage_wall_s": timings,
        "total_wall_s": round(time.perf_counter() - t_start, 3),
    }
    write_provenance(out_dir / PROVENANCE_FILE, {**provenance, **wall})
    return ReportResult(out_dir, html, md, tuple(sections), tuple(sorted(ctx.data_files)))
