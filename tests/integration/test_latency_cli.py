"""`simkv simulate --latency` and `simkv calibrate` end to end (in-process CLI)."""

import json

import numpy as np
import pandas as pd

from simkv.latency.calibrate import predict_ttft, split_tokens
from simkv.latency.costs import LinearCoefficients


def test_simulate_latency_json(cli, mooncake_path):
    r = cli("simulate", "--trace", str(mooncake_path), "--capacity-blocks", "20000", "--model",
            "llama-3.1-8b", "--latency", "--gpu", "H200", "--replicas", "4", "--routing",
            "prefix_aware", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["gpu"] == "H200" and out["replicas"] == 4
    assert 0 < out["ttft_p50_s"] <= out["ttft_p90_s"] <= out["ttft_p99_s"]


def test_calibrate_then_simulate_with_calibration(cli, tmp_path, mooncake_path):
    coef = LinearCoefficients(0.02, 5e-5, 1e-9, 2e-6)
    rng = np.random.default_rng(np.random.SeedSequence(0))
    prompt = rng.integers(100, 20_000, 80)
    cached = (prompt * rng.uniform(0, 1, 80)).astype(np.int64)
    ttft = predict_ttft(coef, *split_tokens(prompt, cached)) * rng.normal(1, 0.02, 80)
    measured = tmp_path / "measured.csv"
    pd.DataFrame({"request": np.arange(80), "ttft_s": ttft, "prompt_tokens": prompt,
                  "cached_tokens": cached, "output_tokens": 4, "error": None}).to_csv(measured, index=False)
    calib = tmp_path / "calib.yaml"
    r = cli("calibrate", "--measured", str(measured), "--out", str(calib), "--seed", "1", "--json")
    assert r.exit_code == 0, r.stderr
    fit = json.loads(r.stdout)
    assert fit["evaluated_on"] == "holdout" and fit["records_evaluated"] == 20
    assert fit["mape"] < 0.05 and abs(fit["per_uncached_token_s"] / 5e-5 - 1) < 0.1
    assert calib.exists()
    again = cli("calibrate", "--measured", str(measured), "--out", str(calib))
    assert again.exit_code == 2 and "refusing to overwrite" in again.stderr
    r = cli("simulate", "--trace", str(mooncake_path), "--capacity-blocks", "5000", "--model",
            "llama-3.1-8b", "--latency", "--calibration", str(calib), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["latency_model"] == "calibrated"


def test_bad_calibration_yaml_is_one_line_exit_2(cli, tmp_path, mooncake_path):
    bad = tmp_path / "calib.yaml"
    bad.write_text("intercept_s: fast\nper_uncached_token_s: 1\nper_uncached_context_token_s: 0\n"
                   "per_cached_token_s: 0\n")
    r = cli("simulate", "--trace", str(mooncake_path), "--capacity-blocks", "100", "--model",
            "llama-3.1-8b", "--latency", "--calibration", str(bad))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("simkv: error:")
    assert str(bad) in lines[0] and "intercept_s" in lines[0]
    assert r.stdout == ""


def test_bad_measured_file_is_one_line_exit_2(cli, tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("request,ttft_s\n0,0.1\n")
    r = cli("calibrate", "--measured", str(m))
    assert r.exit_code == 2 and "missing column" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cli("calibrate", "--measured", str(m), "--holdout", "1.5")
    assert r.exit_code == 2 and "--holdout" in r.stderr


def _replay_dir(tmp_path, name, df, **summary):
    d = tmp_path / name
    d.mkdir()
    df.to_parquet(d / "records.parquet", index=False)
    (d / "summary.json").write_text(json.dumps(summary))
    return d / "records.parquet"


def test_calibrate_pools_replays_and_keeps_the_client_trip_per_level(cli, tmp_path):
    """Two one-at-a-time replays (80 + 40 records) are fitted together; the replay at 8 in
    flight only gives its trip.  Trips by hand: level 1 is the mean of 4 ms and 6 ms = 5 ms;
    level 8 is 12 ms."""
    coef = LinearCoefficients(0.02, 5e-5, 1e-9, 2e-6)
    rng = np.random.default_rng(np.random.SeedSequence(3))

    def records(n):
        prompt = rng.integers(100, 8_000, n)
        cached = (prompt * rng.uniform(0, 1, n)).astype(np.int64)
        return pd.DataFrame({"request": np.arange(n), "prompt_tokens": prompt, "cached_tokens": cached,
                             "ttft_s": predict_ttft(coef, *split_tokens(prompt, cached)),
                             "output_tokens": 4, "error": None})

    a = _replay_dir(tmp_path, "a", records(80), concurrency=1, client_trip_mean_s=0.004)
    b = _replay_dir(tmp_path, "b", records(40), concurrency=1, client_trip_mean_s=0.006)
    # a replay at 8 in flight: its TTFTs include queueing, so fitting them would be wrong
    many = records(50).assign(ttft_s=lambda d: d["ttft_s"] * 5)
    c = _replay_dir(tmp_path, "c", many, concurrency=8, client_trip_mean_s=0.012)
    calib = tmp_path / "calib.yaml"
    r = cli("calibrate", "--measured", str(a), "--measured", str(b), "--measured", str(c),
            "--out", str(calib), "--holdout", "0", "--json")
    assert r.exit_code == 0, r.stderr
    fit = json.loads(r.stdout)
    assert fit["records_fit"] == 120 and fit["replays_fitted"] == 2
    assert abs(fit["per_uncached_token_s"] / 5e-5 - 1) < 1e-6  # the x5 records were left out
    assert fit["client_trip_s"] == {"1": 0.005, "8": 0.012}
    from simkv.latency.calibrate import load_calibration

    loaded = load_calibration(calib)
    assert loaded.client_trip_s == ((1, 0.005), (8, 0.012))
    assert abs(loaded.extra_trip_s(8) - 0.007) < 1e-15

    only_many = cli("calibrate", "--measured", str(c))
    assert only_many.exit_code == 2 and "one at a time" in only_many.stderr
    assert len(only_many.stderr.strip().splitlines()) == 1
    d = _replay_dir(tmp_path, "d", records(20), concurrency=None, client_trip_mean_s=0.01)
    unlimited = cli("calibrate", "--measured", str(a), "--measured", str(d))
    assert unlimited.exit_code == 2 and str(d) in unlimited.stderr and "--concurrency" in unlimited.stderr
