"""``simkv calibrate``: fit the latency model's coefficients to measured TTFTs."""

from __future__ import annotations

from pathlib import Path

import typer

from simkv.cli.common import check_output_path, print_json, print_table


def calibrate_cmd(
    measured: list[Path] = typer.Option(..., "--measured", help="Measured records from the harness (.parquet, .csv, .jsonl); repeat to pool replays. Those replayed one at a time are fitted; the client's trip is read from each replay's summary.json, at every level of in flight."),
    out: Path | None = typer.Option(None, "--out", help="Write the calibration YAML here (for --calibration)."),
    holdout: float = typer.Option(0.25, "--holdout", help="Share of records held back to score the fit, in [0, 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the holdout draw."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    allow_loaded: bool = typer.Option(False, "--allow-loaded", help="Let records from a loaded machine replace a quiet-machine calibration in --out."),
    json_out: bool = typer.Option(False, "--json", help="Print coefficients and fit error as JSON."),
) -> None:
    """Fit TTFT = a + b*uncached + c*uncached*context + d*cached to measured records."""
    import pandas as pd

    from simkv.atomicio import atomic_write_text
    from simkv.errors import InputError
    from simkv.latency.calibrate import fit_calibration, load_measured
    from simkv.latency.calibration_guard import check_overwrite, replay_quiet

    if not 0.0 <= holdout < 1.0:
        raise InputError("must be within [0, 1)", where="--holdout")
    if out is not None:
        check_output_path(out, force=force)
    fit_on, trips = _pool(measured)
    df = pd.concat([load_measured(p) for p in fit_on], ignore_index=True)
    quiet = [replay_quiet(p) for p in fit_on]
    calib = fit_calibration(df, holdout=holdout, seed=seed, source=", ".join(map(str, fit_on)),
                            quiet=None if None in quiet else all(quiet))
    if 1 in trips and len(trips) > 1:
        calib = calib.with_trips(trips)
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
        "client_trip_s": {str(k): v for k, v in calib.client_trip_s} or None,
        "replays_fitted": len(fit_on),
        "quiet_machine": fit.quiet,
        "out": str(out) if out is not None else None,
    }
    if json_out:
        print_json(summary)
    else:
        rows = [(k, f"{v:.4g}" if isinstance(v, float) and k.startswith(("per_", "intercept")) else v)
                for k, v in summary.items()]
        print_table(f"calibrate {', '.join(p.name for p in measured)}", rows)


def _pool(measured: list[Path]) -> tuple[list[Path], dict[int, float]]:
    """(the records replayed one at a time, to fit; the mean client trip per requests in
    flight over all of them).  Records replayed with more in flight are not fitted: the fit
    takes TTFT as one request's prefill alone."""
    from simkv.errors import InputError
    from simkv.latency.calibration_guard import replay_in_flight

    fit_on: list[Path] = []
    seen: dict[int, list[float]] = {}
    for path in measured:
        in_flight, trip = replay_in_flight(path)
        if in_flight is None:
            raise InputError("was replayed with no cap on requests in flight: neither fitted nor "
                             "a trip at a known level (replay with --concurrency)", source=path)
        if in_flight == 1:
            fit_on.append(path)
        if trip is not None:
            seen.setdefault(in_flight, []).append(trip)
    if not fit_on:
        raise InputError("none of the records was replayed one at a time (concurrency 1); the "
                         "fit needs at least one such replay", where="--measured")
    return fit_on, {k: sum(v) / len(v) for k, v in sorted(seen.items())}


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_cmd)
