"""``python -m simkv.pipeline.make_report``: the project's sizing report (what ``make report`` runs).

Runs the registered stages (``simkv.pipeline``: the example workloads over short windows, the
simulations, bills, grid, ...) into ``reports/run/``, reusing every stage whose inputs, config
and code did not change, then renders ``reports/index.html`` (one self-contained file),
``reports/report.md`` and the data behind every figure under ``reports/data/``.  ``--quick``
shrinks the grids and skips the engine replay (the report then says the measured section was
not run and how to run it).
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
#: there (reports/README.md) is left alone.  ``run/`` (full runs) and ``run-quick/``
#: (``--quick``) are the stages' caches: kept (``--fresh`` empties the one in use), apart so
#: that alternating quick and full runs reuse both.
OWNED = ("index.html", "report.md", "data", "measured")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m simkv.pipeline.make_report", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller grids, no engine replay")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports)")
    p.add_argument("--workloads-dir", type=Path, default=Path("workloads"),
                   help="workload specs to generate (default workloads/)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    p.add_argument("--measured", type=Path, default=None,
                   help="existing `simkv-harness validate --json` results to show (skips the replay)")
    p.add_argument("--pricebooks", type=Path, default=None, help="price book folder (default: shipped)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="run folder (default OUT/run, or OUT/run-quick with --quick)")
    p.add_argument("--fresh", action="store_true", help="empty the run folder first (no reuse)")
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
    from simkv.pipeline.api import RUN_FOLDER, n_steps, run_and_render
    from simkv.pipeline.inputs import RunInputs
    from simkv.pipeline.plugins import load_plugin_stages
    from simkv.pipeline.progress import Progress

    load_plugin_stages()
    out = args.out
    run_dir = args.run_dir or out / (RUN_FOLDER + ("-quick" if args.quick else ""))
    try:
        if not args.workloads_dir.is_dir():
            raise InputError("not a directory of workload specs", source=args.workloads_dir,
                             where="--workloads-dir")
        out.mkdir(parents=True, exist_ok=True)
        clear_owned(out)
        if args.fresh and run_dir.is_dir():
            shutil.rmtree(run_dir)
        opts = ReportOptions(quick=args.quick, seed=args.seed, pricebooks_dir=args.pricebooks,
                             measured_path=args.measured, run_engine=not args.quick,
                             offers_replay=True,
                             command="make report" + (" QUICK=1" if args.quick else ""))
        with Progress(n_steps(opts), enabled=not args.no_progress) as progress:
            result, runs = run_and_render(out, RunInputs(workloads_dir=args.workloads_dir), opts,
                                          run_dir=run_dir, progress=progress, started_s=t0)
    except InputError as exc:
        sys.stderr.write(f"simkv report: error: {exc}\n")
        return 2
    ran = [r.name for r in runs if r.status == "ran"]
    reused = [r.name for r in runs if r.status == "cached"]
    sys.stdout.write(f"report: {result.html.resolve()}\n")
    sys.stdout.write(f"        {result.markdown.resolve()} and {len(result.data_files)} data files "
                     f"under {(result.out_dir / 'data').resolve()}\n")
    sys.stdout.write(f"stages: ran {', '.join(ran) or 'none'}; reused {', '.join(reused) or 'none'} "
                     f"(run folder {run_dir.resolve()})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
