from simkv.bench_check import check, latest_ratios


def test_bench_check_flags_regressions_both_directions():
    results = {"benchmarks": [
        {"name": "a", "extra_info": {"speed_ratio": 8.0, "note": "x"}},
        {"name": "b", "extra_info": {"overhead_ratio": 2.0}},
    ]}
    latest = latest_ratios(results)
    assert latest == {"a": {"speed_ratio": 8.0}, "b": {"overhead_ratio": 2.0}}
    base = {"a": {"speed_ratio": {"value": 15.0, "direction": "higher", "margin": 0.4, "goal": 10}},
            "b": {"overhead_ratio": {"value": 1.5, "direction": "lower", "margin": 0.5}}}
    lines = check(latest, base)
    assert lines[0].startswith("FAIL a.speed_ratio") and "goal >= 10 NOT met" in lines[0]
    assert lines[1].startswith("ok   b.overhead_ratio")
    assert check({}, base)[0].startswith("FAIL a.speed_ratio: missing")
