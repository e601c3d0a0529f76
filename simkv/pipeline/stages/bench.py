"""Stage ``bench``: the ``*_ratio`` values of the last ``make bench`` (pytest-benchmark JSON)
beside the committed baseline (report section 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def bench_frame(latest: dict, baseline: dict | None) -> pd.DataFrame:
    """One row per (benchmark, ratio): measured value, baseline, margin and goal when known."""
    from simkv.bench_check import latest_ratios

    rows = []
    ratios = latest_ratios(latest)
    for name in sorted(ratios):
        for key in sorted(ratios[name]):
            ref = (baseline or {}).get(name, {}).get(key, {})
            rows.append({
                "benchmark": name, "ratio": key, "value": ratios[name][key],
                "baseline": ref.get("value"), "direction": ref.get("direction", "higher"),
                "margin": ref.get("margin"), "goal": ref.get("goal"),
            })
    return pd.DataFrame(rows, columns=["benchmark", "ratio", "value", "baseline", "direction",
                                       "margin", "goal"])


def run(ctx: StageContext) -> StageOutput:
    opts = ctx.options
    latest = _read_json(opts.bench_path)
    if latest is None:
        return StageOutput(facts={"latest": False})
    baseline = _read_json(opts.baseline_path)
    machine = latest.get("machine_info", {})
    facts = {"latest": True, "baseline": baseline is not None,
             "cpu": machine.get("cpu", {}).get("brand_raw", "unknown CPU"),
             "python": machine.get("python_version", "?")}
    return StageOutput(tables={"bench_ratios": bench_frame(latest, baseline)}, facts=facts)


register_stage(Stage("bench", "bench results", run, reads=("bench",)))
