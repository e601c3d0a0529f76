"""``simkv report``: the sizing report for a user's own trace (same stages and sections as
``make report``): the stages run into ``OUT/run`` (reused by a later ``--force`` rerun when
nothing changed), then the renderer writes ``OUT/index.html``, ``report.md`` and ``data/``."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import typer

from simkv.cli.common import progress_enabled
from simkv.errors import InputError

#: files a report folder holds; --force replaces only these (``run`` is the stages' cache)
REPORT_FILES = ("index.html", "report.md", "data", "run")


def report_cmd(
    trace_path: Path = typer.Option(..., "--trace", help="Trace file (Mooncake JSONL, Parquet, ...)."),
    model: str | None = typer.Option(None, "--model", help="Model for a trace that names none (catalogue name or config.json)."),
    fmt: str | None = typer.Option(None, "--format", help="Trace format (default: from the suffix)."),
    tiers: Path | None = typer.Option(None, "--tiers", help="Subscription tiers (a subscription price book YAML)."),
    pricebooks: Path | None = typer.Option(None, "--pricebooks", help="Folder of price book YAMLs (default: the shipped ones)."),
    out: Path = typer.Option(Path("simkv-report"), "--out", help="Report folder to create."),
    force: bool = typer.Option(False, "--force", help="Replace an existing report folder's report files."),
    quick: bool = typer.Option(False, "--quick", help="Smaller grids (faster)."),
    measured: Path | None = typer.Option(None, "--measured", help="`simkv-harness validate --json` results to show beside the predictions."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap intervals."),
    days_per_month: float = typer.Option(30.0, "--days-per-month", help="Days in a billing month."),
    ttft_slo_p90: float | None = typer.Option(None, "--ttft-slo-p90-s", help="TTFT p90 objective in seconds that replicas are sized to (default 2)."),
) -> None:
    """Write a sizing report (index.html, report.md, data/) for your trace."""
    from simkv.pipeline.api import RUN_FOLDER, n_steps, run_and_render
    from simkv.pipeline.inputs import RunInputs, workload_digest
    from simkv.pipeline.make_report import clear_owned
    from simkv.pipeline.plugins import load_plugin_stages
    from simkv.pipeline.progress import Progress
    from simkv.pipeline.sources import user_trace
    from simkv.report.model import ReportOptions

    t0 = time.perf_counter()
    if days_per_month <= 0:
        raise InputError("must be > 0", where="--days-per-month")
    if ttft_slo_p90 is not None and not 0 < ttft_slo_p90 < float("inf"):
        raise InputError("must be a number of seconds > 0", where="--ttft-slo-p90-s")
    for path, where in ((tiers, "--tiers"), (measured, "--measured")):
        if path is not None and not path.is_file():
            raise InputError("file not found", source=path, where=where)
    if pricebooks is not None and not pricebooks.is_dir():
        raise InputError("not a directory of price book YAML files", source=pricebooks,
                         where="--pricebooks")
    if out.exists():
        if not out.is_dir():
            raise InputError("exists and is not a folder", source=out, where="--out")
        if any(out.iterdir()) and not force:
            raise InputError("exists and is not empty; refusing to overwrite (give --force to "
                             "replace its report files)", source=out, where="--out")
    elif not out.parent.exists():
        raise InputError("parent directory does not exist", source=out, where="--out")
    w = user_trace(trace_path, model, fmt)
    _check_inputs(tiers, pricebooks, measured)
    argv = ["simkv", "report", "--trace", trace_path.name] + (["--model", model] if model else []) \
        + (["--quick"] if quick else [])
    opts = ReportOptions(quick=quick, seed=seed, days_per_month=days_per_month,
                         pricebooks_dir=pricebooks, tiers_path=tiers, measured_path=measured,
                         ttft_slo_p90_s=ttft_slo_p90, title=f"simkv sizing report: {w.name}", command=" ".join(argv))
    # build in a scratch folder next to --out, then move the files in: bad input found midway
    # leaves nothing behind and never touches an existing report
    load_plugin_stages()
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if force and (out / RUN_FOLDER / "manifest.json").is_file():
            shutil.copytree(out / RUN_FOLDER, stage / RUN_FOLDER)  # reuse unchanged stages
        files = RunInputs(trace_path=trace_path, trace_model=model, trace_format=fmt)
        inputs = RunInputs(given=(w,), given_digest=workload_digest(files))  # loaded once
        with Progress(n_steps(opts), enabled=progress_enabled()) as progress:
            run_and_render(stage, inputs, opts, progress=progress, started_s=t0,
                           subtitle=f"Trace {w.source} ({w.n_requests:,} requests, {w.model}).")
        out.mkdir(exist_ok=True)
        clear_owned(out, REPORT_FILES)
        for name in REPORT_FILES:
            if (stage / name).exists():
                shutil.move(str(stage / name), str(out / name))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    sys.stdout.write(f"report: {(out / 'index.html').resolve()}\n")


def _check_inputs(tiers: Path | None, pricebooks: Path | None, measured: Path | None) -> None:
    """Validate the small inputs before any simulation runs (one clear line on error)."""
    from simkv.economics.kinds.subscription import SubscriptionBook
    from simkv.economics.pricebook import load_pricebook, load_pricebooks
    from simkv.report.sections.ttft import load_measured

    if tiers is not None:
        book = load_pricebook(tiers)
        if not isinstance(book, SubscriptionBook):
            raise InputError(f"needs a subscription price book, got kind {book.kind!r}",
                             source=tiers, where="--tiers")
    if pricebooks is not None:
        load_pricebooks(pricebooks)
    if measured is not None:
        try:
            load_measured(measured)
        except (ValueError, RecursionError) as exc:  # JSON syntax, deep nesting (InputError too)
            if isinstance(exc, InputError):
                raise
            raise InputError(f"not JSON from `simkv-harness validate --json` ({exc})",
                             source=measured, where="--measured") from None


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
