"""``simkv calibrate``: fit the latency model's coefficients to measured TTFTs."""

from __future__ import annotations

from pathlib import Path

import typer

from simkv.cli.common import check_output_path, print_json, print_table


def calibrate_cmd(
    measured: Path = typer.Option(..., "--measured", help="Measured records from the harness (.parquet, .csv, .jsonl)."),
    out: Path | None = typer.Option(None, "--out", help="Write the calibration YAML here (for --calibration)."),
    holdout: float = typer.Option(0.25, "--holdout", help="Share of records held back to score the fit, in [0, 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the holdout draw."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    allow_loaded: bool = typer.Option(False, "--allow-loaded", help="Let records from a loaded machine replace a quiet-machine calibration in --out."),
    json_out: bool = typer.Option(False, "--json", help="Print coefficients and fit error as JSON."),
) -> None:
    """Fit TTFT = a + b*uncached + c*uncached*context + d*cached to measured records."""
    from simkv.atomicio import atomic_write_text
    from simkv.errors import InputError
    from simkv.latency.calibrate import fit_calibration, load_measured
    from simkv.latency.calibration_guard import check_overwrite, replay_quiet

    if not 0.0 <= holdout < 1.0:
        raise InputError("must be within [0, 1)", where="--holdout")
    if out is not None:
        check_output_path(out, force=force)
    df = load_measured(measured)
    calib = fit_calibration(df, holdout=holdout, seed=seed, source=str(measured),
                            quiet=replay_quiet(measured))
    if out is not None:
        check_overwrite(out, calib, allow_loaded=allow_loaded)
        atomic_write_text(out, calib.to_yaml())
    fit = calib.fit
    summary = {
        "intercept_s": calib.intercept_s,
        "per_uncached_token_s": calib.per_uncached_token_s,
        "per_uncached_context_token_s": calib.per_uncached_context_token_s,
        "per_cached_token_s": calib.per_cached_token_s,
        "records": int(len(df)),
        "records_fit": fit.records_fit,
        "records_evaluated": fit.records_evaluated,
        "evaluated_on": fit.evaluated_on,
        "outliers_downweighted": fit.outliers_downweighted,
        "mape": fit.mape,
        "p50_abs_rel_error": fit.p50_abs_rel_error,
        "p90_abs_rel_error": fit.p90_abs_rel_error,
        "in_sample_mape": fit.in_sample_mape,
        "in_sample_p50_abs_rel_error": fit.in_sample_p50_abs_rel_error,
        "in_sample_p90_abs_rel_error": fit.in_sample_p90_abs_rel_error,
        "decode_step_s": calib.decode_step_s,
        "quiet_machine": fit.quiet,
        "out": str(out) if out is not None else None,
    }
    if json_out:
        print_json(summary)
    else:
        rows = [(k, f"{v:.4g}" if isinstance(v, float) and k.startswith(("per_", "intercept")) else v)
                for k, v in summary.items()]
        print_table(f"calibrate {measured.name}", rows)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_cmd)
