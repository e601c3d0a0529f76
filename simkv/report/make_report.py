"""``python -m simkv.report.make_report``: the project's sizing report (what ``make report`` runs).

Generates the example workloads (short windows), runs every section and writes
``reports/index.html`` (one self-contained file), ``reports/report.md`` and the data behind
every figure under ``reports/data/``.  ``--quick`` shrinks the grids and skips the engine
replay (the report then says the measured section was not run and how to run it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from simkv.errors import InputError
from simkv.report.model import ReportOptions

#: what ``make report`` owns inside its output folder (replaced on every run); anything else
#: there (reports/README.md) is left alone.
OWNED = ("index.html", "report.md", "data", "measured")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m simkv.report.make_report", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller grids, no engine replay")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports)")
    p.add_argument("--workloads-dir", type=Path, default=Path("workloads"),
                   help="workload specs to generate (default workloads/)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    p.add_argument("--measured", type=Path, default=None,
                   help="existing `simkv-harness validate --json` results to show (skips the replay)")
    p.add_argument("--pricebooks", type=Path, default=None, help="price book folder (default: shipped)")
    p.add_argument("--ttft-slo-p90-s", type=float, default=None,
                   help="TTFT p90 objective (s) replicas are sized to (default 2)")
    return p.parse_args(argv)


def clear_owned(out: Path, names: tuple[str, ...] = OWNED) -> None:
    """Remove what a previous run of this pipeline wrote in ``out`` (and nothing else)."""
    for name in names:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    args = parse_args(argv)
    from simkv.report.inputs import example_workloads
    from simkv.report.pipeline import Progress, build_report
    from simkv.report.sections import SECTIONS

    out = args.out
    if args.ttft_slo_p90_s is not None and not 0 < args.ttft_slo_p90_s < float("inf"):
        sys.stderr.write("simkv report: error: --ttft-slo-p90-s: must be a number of seconds > 0\n")
        return 2
    try:
        out.mkdir(parents=True, exist_ok=True)
        clear_owned(out)
        n_stages = len(SECTIONS) + 2 + (0 if args.quick or args.measured else 1)
        with Progress(n_stages, enabled=not args.no_progress) as progress:
            progress.stage("generating the example workloads")
            tg = time.perf_counter()
            workloads = example_workloads(args.workloads_dir, quick=args.quick)
            timings = {"generating the example workloads": round(time.perf_counter() - tg, 3)}
            progress.advance()
            measured_path = args.measured
            measured_note = ""
            if not args.quick and measured_path is None:
                progress.stage("validation replay on the CPU engine")
                tv = time.perf_counter()
                measured_path, measured_note = _replay(out)
                timings["validation replay on the CPU engine"] = round(time.perf_counter() - tv, 3)
                progress.advance()
            opts = ReportOptions(quick=args.quick, seed=args.seed, pricebooks_dir=args.pricebooks,
                                 measured_path=measured_path, run_engine=not args.quick,
                                 measured_note=measured_note, offers_replay=True,
                                 ttft_slo_p90_s=args.ttft_slo_p90_s,
                                 command="make report" + (" QUICK=1" if args.quick else ""))
            subtitle = (f"{len(workloads)} example workloads generated from "
                        f"{args.workloads_dir.name}/ (short windows, extrapolated to a month).")
            from simkv.report.measured import engine_python

            result = build_report(out, workloads, opts, progress=progress, subtitle=subtitle,
                                  extra_timings=timings, started_s=t0,
                                  engine_python=None if args.quick else engine_python())
    except InputError as exc:
        sys.stderr.write(f"simkv report: error: {exc}\n")
        return 2
    sys.stdout.write(f"report: {result.html.resolve()}\n")
    sys.stdout.write(f"        {result.markdown.resolve()} and {len(result.data_files)} data files "
                     f"under {(result.out_dir / 'data').resolve()}\n")
    return 0


def _replay(out: Path) -> tuple[Path | None, str]:
    """Run the validation replay on the CPU engine; (results, reason if none)."""
    from simkv.report.measured import run_validation

    run = run_validation(out / "measured")
    return run.results, run.reason


if __name__ == "__main__":
    raise SystemExit(main())
