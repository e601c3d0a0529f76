"""Report building blocks: deterministic figures, escaping, provenance, the bench section,
cost-case figures, and the CLI's refusal to overwrite a user's folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from simkv.pipeline.api import context_for
from simkv.report.figures import new_figure, png_bytes
from simkv.report.model import ReportContext, ReportOptions, Section, Table
from simkv.report.provenance import WALL_CLOCK_FIELDS, mask_wall_clock
from simkv.report.render import render
from simkv.report.runview import RunView

ROOT = Path(__file__).resolve().parents[2]


def _figure() -> bytes:
    with new_figure() as (fig, ax):
        ax.plot([0, 1, 2], [3, 1, 2], label="x")
        ax.legend()
        return png_bytes(fig)


def test_figures_are_byte_identical_and_carry_no_version_or_date():
    a, b = _figure(), _figure()
    assert a == b
    assert a[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Software" not in a and b"matplotlib" not in a.lower()


def test_matplotlib_global_state_is_left_alone():
    import matplotlib

    before = dict(matplotlib.rcParams)
    _figure()
    assert dict(matplotlib.rcParams) == before


def _provenance() -> dict:
    return {"simkv_version": "0", "git": {"commit": "abc", "dirty": False}, "command": "c",
            "seed": 0, "packages": {}, "engine": {}, "inputs": [], "pricebooks": []}


def test_render_escapes_text_in_html_and_markdown(tmp_path):
    sec = Section("k", "Title <b>bold</b>", readings=["a <img src=x onerror=alert(1)> b"],
                  tables=[Table("t", ("c<1>",), (("v&<script>",),))])
    html, md = render(tmp_path, sections=[sec], provenance=_provenance(), title="T<i>",
                      subtitle="S<script>", mode="m")
    text = html.read_text()
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<img src=x" not in text and "<script" not in text
    assert "v&amp;&lt;script&gt;" in text
    mtext = md.read_text()
    assert "<img" not in mtext and "<script" not in mtext and "&lt;b&gt;" in mtext


def test_section_status_is_checked_and_missing_makes_it_partial():
    with pytest.raises(ValueError):
        Section("k", "t", status="done")
    s = Section("k", "t")
    s.mark_missing("x is not in this build")
    assert s.status == "partial" and s.summary_line == "x is not in this build"


def test_mask_wall_clock_masks_exactly_the_listed_keys():
    rec = {"generated_at_utc": "now", "stage_wall_s": {"a": 1.0}, "total_wall_s": 2.0,
           "seed": 0, "nested": [{"total_wall_s": 3}]}
    masked = mask_wall_clock(rec)
    assert set(WALL_CLOCK_FIELDS) == {"generated_at_utc", "stage_wall_s", "total_wall_s"}
    assert masked["seed"] == 0
    assert all(masked[k] == "<wall clock>" for k in WALL_CLOCK_FIELDS)
    assert masked["nested"][0]["total_wall_s"] == "<wall clock>"


def _bench_json(path: Path, value: float) -> None:
    path.write_text(json.dumps({
        "machine_info": {"cpu": {"brand_raw": "test cpu"}, "python_version": "3.11"},
        "benchmarks": [{"name": "test_lru_kernel_vs_libcachesim", "extra_info": {
            "speedup_vs_libcachesim_ratio": value, "accesses": 10, "densify_s": 0.1}}]}))


def test_bench_section_reads_ratios_against_the_baseline(tmp_path):
    from simkv.report.sections import bench

    latest, base = tmp_path / "latest.json", tmp_path / "baseline.json"
    _bench_json(latest, 12.5)
    base.write_text(json.dumps({"test_lru_kernel_vs_libcachesim": {
        "speedup_vs_libcachesim_ratio": {"value": 10.0, "direction": "higher", "margin": 0.3,
                                         "goal": 15}}}))
    ctx = context_for(tmp_path / "out", ReportOptions(bench_path=latest, baseline_path=base),
                      stages=["bench"])
    sec = bench.build(ctx)
    assert sec.status == "ok"
    frame = pd.read_csv(tmp_path / "out" / "data" / "bench_ratios.csv")
    assert frame["value"].tolist() == [12.5] and frame["baseline"].tolist() == [10.0]
    assert "accesses" not in set(frame["ratio"])  # only *_ratio keys
    assert "1.25x the baseline" in sec.readings[0] and "NOT met" in sec.readings[0]
    assert sec.figures and sec.figures[0].basis == "measured"


def test_bench_section_says_how_to_run_when_absent(tmp_path):
    from simkv.report.sections import bench

    ctx = context_for(tmp_path, ReportOptions(bench_path=tmp_path / "nope.json"), stages=["bench"])
    sec = bench.build(ctx)
    assert sec.status == "not_run" and "make bench" in sec.readings[0] and not sec.figures


def test_cost_case_section_reproduces_the_brief(tmp_path):
    from simkv.report.sections import cost_case

    ctx = context_for(tmp_path, ReportOptions(), stages=["bills"])
    sec = cost_case.build(ctx)
    frame = pd.read_csv(tmp_path / "data" / "cost_case_recompute.csv")
    assert frame["monthly_recompute_usd"].tolist() == [288.0, 16200.0]
    text = " ".join(sec.readings)
    assert "$288.00" in text and "$16,200.00" in text
    kv = pd.read_csv(tmp_path / "data" / "cost_case_kv_bytes.csv")
    from simkv.models import get_model

    row = kv[(kv["model"] == "llama-3.1-8b") & (kv["prefix_tokens"] == 32000)].iloc[0]
    assert row["kv_bytes"] == get_model("llama-3.1-8b").kv_bytes(32000)


def test_every_figure_names_an_existing_data_file(tmp_path):
    from simkv.report.sections import cost_case

    ctx = context_for(tmp_path, ReportOptions(), stages=["bills"])
    sec = cost_case.build(ctx)
    for f in sec.figures:
        assert (tmp_path / f.data_file).is_file() and f.basis in ("modelled", "measured",
                                                                    "measured and modelled")


def test_measured_results_missing_keys_is_bad_input(tmp_path):
    from simkv.errors import InputError
    from simkv.report.sections.ttft import load_measured

    p = tmp_path / "v.json"
    p.write_text(json.dumps({"measured_prefix_hit_ratio": 0.5}))
    with pytest.raises(InputError, match="predicted_prefix_hit_ratio"):
        load_measured(p)


def test_report_cli_refuses_a_non_empty_folder_without_force(cli, tmp_path, mooncake_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    res = cli("report", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--out", str(out))
    assert res.exit_code == 2
    assert res.stderr.startswith("simkv: error:") and "--force" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_report_cli_bad_inputs_exit_2(cli, tmp_path, mooncake_path):
    res = cli("report", "--trace", str(mooncake_path), "--model", "llama-3.1-8b",
              "--tiers", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "r"))
    assert res.exit_code == 2 and "--tiers" in res.stderr
    res = cli("report", "--trace", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r2"))
    assert res.exit_code == 2
    res = cli("report", "--trace", str(mooncake_path), "--model", "no-such-model",
              "--out", str(tmp_path / "r3"))
    assert res.exit_code == 2
    res = cli("report", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--tiers",
              str(ROOT / "simkv" / "data" / "pricebooks" / "openai.yaml"), "--out", str(tmp_path / "r4"))
    assert res.exit_code == 2 and "subscription" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = cli("report", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--measured",
              str(bad), "--out", str(tmp_path / "r5"))
    assert res.exit_code == 2 and "--measured" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]  # nothing written


def test_measured_results_become_errors_table_and_figure(tmp_path):
    from simkv.report.model import Section
    from simkv.report.sections import ttft

    p = tmp_path / "validate.json"
    p.write_text(json.dumps({
        "label": "cpu replay", "requests_sent": 120,
        "predicted_prefix_hit_ratio": 0.80, "measured_prefix_hit_ratio": 0.75,
        "predicted_ttft_p50_s": 0.055, "measured_ttft_p50_s": 0.050,
        "predicted_ttft_p90_s": None, "measured_ttft_p90_s": 0.12,
        "calibration_fit": {"mape": 0.1, "p90_abs_rel_error": 0.2},
        "calibration_note": "calibrated on another replay"}))
    ctx = ReportContext(tmp_path / "out", RunView(tmp_path / "run"), ReportOptions(measured_path=p))
    sec = Section("ttft", "t")
    ttft._measured(ctx, sec)
    frame = pd.read_csv(tmp_path / "out" / "data" / "measured_vs_predicted.csv")
    assert frame["metric"].tolist() == ["prefix hit ratio", "TTFT p50 (s)"]  # p90 has no prediction
    assert frame["abs_error"].round(6).tolist() == [0.05, 0.005]
    assert frame["rel_error"].round(6).tolist() == [round(0.05 / 0.75, 6), 0.1]
    assert sec.figures[0].basis == "measured and modelled"
    assert any("MAPE 10.0%" in r for r in sec.readings)


def test_measured_absent_says_how_to_run_it(tmp_path):
    from simkv.report.model import Section
    from simkv.report.sections import ttft

    for opts, phrase in ((ReportOptions(quick=True, offers_replay=True), "--quick skips"),
                         (ReportOptions(), "--measured RESULTS.json")):
        sec = Section("ttft", "t")
        ttft._measured(ReportContext(tmp_path, RunView(tmp_path / "run"), opts), sec)
        assert phrase in sec.readings[-1] and "make report" in sec.readings[-1]
        assert not sec.figures
