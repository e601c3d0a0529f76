"""Calibration: recovering known coefficients, robustness, YAML round trip, bad input."""

import numpy as np
import pandas as pd
import pytest

from simkv.cache import CacheConfig
from simkv.errors import InputError
from simkv.latency.calib_eval import evaluate_prediction
from simkv.latency.calibrate import (
    Calibration,
    fit_calibration,
    load_calibration,
    nnls_small,
    predict_ttft,
    split_tokens,
)
from simkv.latency.costs import LinearCoefficients
from tests.conftest import random_trace

TRUE = LinearCoefficients(0.015, 8e-5, 3e-9, 4e-6)


def _measured(n=240, noise=0.0, seed=2, coef=TRUE, noise_s=0.0):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    prompt = rng.integers(64, 16_000, n)
    cached = (prompt * rng.uniform(0, 1, n)).astype(np.int64)
    ttft = predict_ttft(coef, *split_tokens(prompt, cached)) * rng.normal(1, noise, n) if noise \
        else predict_ttft(coef, *split_tokens(prompt, cached))
    if noise_s:
        ttft = ttft + rng.normal(0, noise_s, n)
    return pd.DataFrame({"request": np.arange(n), "ttft_s": ttft, "prompt_tokens": prompt,
                         "cached_tokens": cached, "output_tokens": 8, "error": None})


def test_recovers_known_coefficients_exactly_without_noise():
    c = fit_calibration(_measured(), holdout=0.25, seed=1)
    np.testing.assert_allclose(c.coefficients().as_array(), TRUE.as_array(), rtol=1e-6)
    assert c.fit.evaluated_on == "holdout" and c.fit.records_evaluated == 60
    assert c.fit.mape < 1e-6


def test_recovers_coefficients_with_noise_errors_and_outliers():
    """Noise in seconds (2 ms, the fit's own terms: issue 16 made the fit absolute), bad rows
    and a stall the Huber loss must not follow."""
    df = _measured(noise_s=0.002)
    df.loc[5, "error"] = "timeout"
    df.loc[6, "ttft_s"] = np.nan
    df.loc[7, "cached_tokens"] = np.nan
    df.loc[8, "ttft_s"] *= 20  # a stall: the robust pass drops it
    c = fit_calibration(df, holdout=0.25, seed=3)
    np.testing.assert_allclose(c.coefficients().as_array(), TRUE.as_array(), rtol=0.1)
    assert c.fit.records_fit + c.fit.records_evaluated == len(df) - 3
    assert 0.0 < c.fit.p50_abs_rel_error < 0.05 and c.fit.p90_abs_rel_error < 0.1
    assert c.fit.outliers_downweighted >= 1 and c.fit.loss == "huber_seconds"


def test_multiplicative_noise_still_predicts_well_in_and_out_of_sample():
    """3% relative noise (the old test's noise): the absolute fit predicts within a few percent
    on held-out records and reports its in-sample error beside."""
    c = fit_calibration(_measured(noise=0.03), holdout=0.25, seed=3)
    assert 0.0 < c.fit.p50_abs_rel_error < 0.05 and c.fit.p90_abs_rel_error < 0.1
    assert 0.0 < c.fit.in_sample_p50_abs_rel_error < 0.05
    assert c.fit.in_sample_p90_abs_rel_error < 0.1


def test_absolute_fit_is_not_biased_low_like_the_relative_one():
    """Noise whose spread grows with TTFT (a loaded CPU): a 1/y-weighted relative fit leans low;
    the Huber fit on seconds keeps the median prediction within 15% of the measured median."""
    rng = np.random.default_rng(np.random.SeedSequence(9))
    df = _measured(noise=0.0, seed=9)
    df["ttft_s"] = df["ttft_s"] * rng.lognormal(0.0, 0.35, len(df))
    c = fit_calibration(df, holdout=0.0)
    pred = predict_ttft(c.coefficients(), *split_tokens(df["prompt_tokens"], df["cached_tokens"]))
    assert abs(np.median(pred) - np.median(df["ttft_s"])) / np.median(df["ttft_s"]) < 0.15


def test_loaded_records_do_not_replace_a_quiet_calibration(tmp_path):
    from simkv.latency.calibration_guard import check_overwrite

    quiet = fit_calibration(_measured(), quiet=True)
    loaded = fit_calibration(_measured(), quiet=False)
    path = tmp_path / "cal.yaml"
    path.write_text(quiet.to_yaml())
    with pytest.raises(InputError, match="--allow-loaded"):
        check_overwrite(path, loaded, allow_loaded=False)
    check_overwrite(path, loaded, allow_loaded=True)
    check_overwrite(path, quiet, allow_loaded=False)


def test_coefficients_stay_non_negative():
    zero_load = LinearCoefficients(0.01, 1e-4, 0.0, 0.0)
    c = fit_calibration(_measured(noise=0.05, coef=zero_load), holdout=0.0)
    assert (c.coefficients().as_array() >= 0).all()
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert (nnls_small(a, np.array([1.0, -2.0, -1.0])) >= 0).all()


def test_holdout_draw_is_seeded():
    df = _measured(noise=0.05)
    assert fit_calibration(df, seed=4) == fit_calibration(df, seed=4)
    assert fit_calibration(df, seed=4).fit != fit_calibration(df, seed=5).fit


def test_yaml_round_trip(tmp_path):
    c = fit_calibration(_measured(noise=0.02), holdout=0.2, seed=0, source="m.csv")
    path = tmp_path / "calib.yaml"
    path.write_text(c.to_yaml())
    assert load_calibration(path) == c


@pytest.mark.parametrize("text, where", [
    ("intercept_s: 0.1\nper_uncached_token_s: -1\nper_uncached_context_token_s: 0\n"
     "per_cached_token_s: 0\n", "field per_uncached_token_s"),
    ("intercept_s: 0.1\nper_uncached_token_s: 1\nper_uncached_context_token_s: 0\n"
     "per_cached_token_s: 0\nbogus: 1\n", "field bogus"),
    ("intercept_s: 0.1\n", "field per_uncached_token_s"),
    ("- 1\n- 2\n", "mapping"),
    ("intercept_s: [\n", "line"),
])
def test_bad_calibration_yaml_names_file_and_field(tmp_path, text, where):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_calibration(path)
    assert str(path) in str(err.value) and where in str(err.value)
    assert "\n" not in str(err.value)


def test_measured_records_need_their_columns_and_enough_rows():
    with pytest.raises(InputError, match="missing column"):
        fit_calibration(_measured().drop(columns=["cached_tokens"]))
    with pytest.raises(InputError, match="usable record"):
        fit_calibration(_measured(n=3))
    with pytest.raises(InputError, match="holdout"):
        fit_calibration(_measured(), holdout=1.0)


def test_evaluate_prediction_against_a_replay():
    trace = random_trace(9, n_requests=120, block_tokens=16, max_blocks=200,
                         models=("llama-3.1-8b",))
    cfg = CacheConfig()
    calib = Calibration(*TRUE.as_array())
    from simkv.cache import simulate

    hits = simulate(trace, cfg).records["reused_tokens"].to_numpy()
    ttft = predict_ttft(TRUE, *split_tokens(trace.input_tokens, hits))
    measured = pd.DataFrame({"request": np.arange(trace.n_requests), "ttft_s": ttft * 1.1,
                             "prompt_tokens": trace.input_tokens, "cached_tokens": hits,
                             "output_tokens": trace.output_tokens, "error": None})
    out = evaluate_prediction(trace, cfg, measured, calib, skip_first=1)
    assert out["requests"] == trace.n_requests - 1
    # predictions are 1/1.1 of what was "measured": a 9.1% error at every quantile
    assert out["p50_rel_error"] == pytest.approx(1 - 1 / 1.1, rel=1e-3)
    assert out["p50_rel_error_engine_hits"] == pytest.approx(1 - 1 / 1.1, rel=1e-3)
    assert out["within_15pct"] is True
    assert out["simulated_cached_share"] == pytest.approx(out["engine_cached_share"])


def test_extra_trip_interpolates_between_measured_levels():
    """Trips 4 ms at 1 in flight, 11 ms at 8: the growth is 7 ms at 8, 3/7 of it (3 ms) at 4,
    held at 7 ms beyond 8, nothing at 1, unlimited or without a level-1 trip."""
    base = fit_calibration(_measured(), holdout=0.0)
    c = base.with_trips({8: 0.011, 1: 0.004})
    assert c.client_trip_s == ((1, 0.004), (8, 0.011))
    assert c.extra_trip_s(1) == 0.0 and c.extra_trip_s(None) == 0.0
    assert abs(c.extra_trip_s(8) - 0.007) < 1e-15
    assert abs(c.extra_trip_s(4) - 0.003) < 1e-15
    assert abs(c.extra_trip_s(32) - 0.007) < 1e-15
    assert base.with_trips({8: 0.011}).extra_trip_s(8) == 0.0
    assert base.extra_trip_s(8) == 0.0


def test_trips_round_trip_and_bad_levels_name_the_field(tmp_path):
    c = fit_calibration(_measured(), holdout=0.2).with_trips({1: 0.004, 8: 0.011})
    path = tmp_path / "calib.yaml"
    path.write_text(c.to_yaml())
    assert load_calibration(path) == c
    bad = tmp_path / "bad.yaml"
    bad.write_text("intercept_s: 0.1\nper_uncached_token_s: 0\nper_uncached_context_token_s: 0\n"
                   "per_cached_token_s: 0\nclient_trip_s: {0: 0.01}\n")
    with pytest.raises(InputError) as err:
        load_calibration(bad)
    assert "client_trip_s" in str(err.value) and "\n" not in str(err.value)
