"""Run the stages, then render: what ``make report``, ``simkv report`` and the tests call.

The run folder is ``<out>/run`` unless given; a later call with the same inputs reuses every
stage whose cache key is unchanged (``simkv.pipeline.runner``).
"""

from __future__ import annotations

import time
from pathlib import Path

from simkv.pipeline.inputs import RunInputs
from simkv.pipeline.progress import Progress
from simkv.pipeline.runner import StageRun, ordered_stages, run_stages
from simkv.pipeline.workload import WorkloadInput
from simkv.report.assemble import ReportResult, render_run
from simkv.report.model import ReportOptions

RUN_FOLDER = "run"


def n_steps(options: ReportOptions) -> int:
    """Progress steps of :func:`run_and_render`: enabled stages, sections, writing."""
    from simkv.report.sections import SECTIONS

    return sum(1 for s in ordered_stages() if s.enabled(options)) + len(SECTIONS) + 1


def run_and_render(out_dir: Path, inputs: RunInputs, options: ReportOptions, *,
                   run_dir: Path | None = None, progress: Progress | None = None,
                   subtitle: str | None = None,
                   started_s: float | None = None) -> tuple[ReportResult, list[StageRun]]:
    """Run (or reuse) every stage into ``run_dir`` and render the report into ``out_dir``."""
    import simkv.pipeline.builtin  # noqa: F401 - registers simkv's stages

    t0 = started_s if started_s is not None else time.perf_counter()
    out_dir = Path(out_dir)
    run_dir = Path(run_dir) if run_dir is not None else out_dir / RUN_FOLDER
    runs = run_stages(options, run_dir, inputs, progress=progress)
    timings = {f"stage {r.name} ({r.status})": r.wall_s for r in runs}
    if subtitle is None:
        subtitle = default_subtitle(run_dir, inputs)
    result = render_run(run_dir, out_dir, options, progress=progress, subtitle=subtitle,
                        timings=timings, started_s=t0)
    return result, runs


def default_subtitle(run_dir: Path, inputs: RunInputs) -> str:
    from simkv.report.runview import RunView

    rows = RunView(run_dir).table("workloads", "workloads")
    if inputs.workloads_dir is not None and inputs.given is None:
        return (f"{len(rows)} example workloads generated from {Path(inputs.workloads_dir).name}/ "
                "(short windows, extrapolated to a month).")
    if len(rows) == 1:
        r = rows.iloc[0]
        return f"Trace {r['source']} ({int(r['requests']):,} requests, {r['model']})."
    return ""


def build_report(out_dir: Path, workloads: list[WorkloadInput], options: ReportOptions, *,
                 subtitle: str = "") -> ReportResult:
    """The report for workloads already in memory (a notebook, the tests): never cached."""
    result, _ = run_and_render(out_dir, RunInputs(given=tuple(workloads)), options,
                               subtitle=subtitle)
    return result


def context_for(out_dir: Path, options: ReportOptions, *, stages: list[str] | None = None,
                workloads: list[WorkloadInput] = ()):
    """Run ``stages`` (and what they need) for ``workloads`` into ``out_dir/run`` and return the
    renderer's context over it: one section can then be built alone (tests, notebooks)."""
    import simkv.pipeline.builtin  # noqa: F401 - registers simkv's stages
    from simkv.report.model import ReportContext
    from simkv.report.runview import RunView

    run_dir = Path(out_dir) / RUN_FOLDER
    run_stages(options, run_dir, RunInputs(given=tuple(workloads)), names=stages)
    return ReportContext(Path(out_dir), RunView(run_dir), options)
