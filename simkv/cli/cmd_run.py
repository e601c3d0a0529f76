"""``simkv run``: run the report's stages into a run folder, without rendering.

    simkv run [--out reports/run] [--quick] [--stage grid ...] [--trace T --model M]

The default folders are make report's (``reports/run``, ``reports/run-quick`` with --quick),
so ``simkv run`` then ``make report`` reuses every stage.

Each stage reruns only when its cache key (inputs' content hashes, config, code) changed;
``simkv run --list`` prints the stages and what each reads.  Render the folder afterwards with
``python -m simkv.pipeline.make_report`` / ``simkv report`` (which run the stages themselves too).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from simkv.cli.common import progress_enabled
from simkv.errors import InputError


def run_cmd(
    out: Path | None = typer.Option(None, "--out", help="Run folder (default reports/run, reports/run-quick with --quick; reused stages stay)."),
    stage: list[str] = typer.Option([], "--stage", help="Run only this stage and those it needs (repeatable)."),
    quick: bool = typer.Option(False, "--quick", help="Smaller grids, no engine replay."),
    workloads_dir: Path = typer.Option(Path("workloads"), "--workloads-dir", help="Workload specs to generate."),
    trace_path: Path | None = typer.Option(None, "--trace", help="A trace file instead of the example workloads."),
    model: str | None = typer.Option(None, "--model", help="Model for a trace that names none."),
    fmt: str | None = typer.Option(None, "--format", help="Trace format (default: from the suffix)."),
    pricebooks: Path | None = typer.Option(None, "--pricebooks", help="Folder of price book YAMLs."),
    tiers: Path | None = typer.Option(None, "--tiers", help="Subscription tiers (a subscription price book YAML)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap intervals."),
    list_stages: bool = typer.Option(False, "--list", help="List the stages and exit."),
) -> None:
    """Run the report's stages (workloads, simulate, grid, bills, ...) into a run folder."""
    from simkv.pipeline.inputs import RunInputs
    from simkv.pipeline.plugins import load_plugin_stages
    from simkv.pipeline.progress import Progress
    from simkv.pipeline.runner import ordered_stages, run_stages
    from simkv.report.model import ReportOptions

    load_plugin_stages()
    if list_stages:
        for s in ordered_stages():
            sys.stdout.write(f"{s.name:10s} {s.label}; needs: {', '.join(s.needs) or '-'}; "
                             f"reads: {', '.join(s.reads) or '-'}\n")
        return
    if trace_path is not None and not trace_path.is_file():
        raise InputError("file not found", source=trace_path, where="--trace")
    if trace_path is None and not workloads_dir.is_dir():
        raise InputError("not a directory of workload specs", source=workloads_dir,
                         where="--workloads-dir")
    if pricebooks is not None and not pricebooks.is_dir():
        raise InputError("not a directory of price book YAML files", source=pricebooks,
                         where="--pricebooks")
    if tiers is not None and not tiers.is_file():
        raise InputError("file not found", source=tiers, where="--tiers")
    if out is None:
        out = Path("reports/run-quick" if quick else "reports/run")
        out.parent.mkdir(parents=True, exist_ok=True)
    if not out.parent.exists():
        raise InputError("parent directory does not exist", source=out, where="--out")
    opts = ReportOptions(quick=quick, seed=seed, pricebooks_dir=pricebooks, tiers_path=tiers,
                         run_engine=not quick and trace_path is None)
    inputs = (RunInputs(trace_path=trace_path, trace_model=model, trace_format=fmt)
              if trace_path is not None else RunInputs(workloads_dir=workloads_dir))
    names = list(stage) or None
    n = len([s for s in ordered_stages(names) if s.enabled(opts)])
    with Progress(n, enabled=progress_enabled()) as progress:
        runs = run_stages(opts, out, inputs, names=names, progress=progress)
    for r in runs:
        sys.stdout.write(f"{r.name:10s} {r.status:7s} {r.wall_s:8.2f} s\n")
    sys.stdout.write(f"run folder: {out.resolve()}\n")


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
