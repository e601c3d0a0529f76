"""The report pipeline end to end: deterministic output, the ``simkv report`` CLI on a user's
trace, and every caption's data file present."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from simkv.pipeline.api import build_report
from simkv.report.model import ReportOptions
from simkv.report.provenance import PROVENANCE_FILE, mask_wall_clock
from tests.integration.test_report_browser import small_workloads

pytestmark = pytest.mark.slow


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_runs_give_identical_files_apart_from_wall_clock_fields(tmp_path, monkeypatch):
    import simkv.report.provenance as provenance

    # other developers commit to this tree while the test runs: read the commit once (the run
    # folder's manifests and the report's provenance both read it from here)
    commit = provenance.git_commit()
    monkeypatch.setattr(provenance, "git_commit", lambda: commit)
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        build_report(out, small_workloads(), ReportOptions(quick=True, n_boot=20, command="test"))
        outs.append(_files(out))
    assert outs[0].keys() == outs[1].keys()
    assert PROVENANCE_FILE in outs[0]
    for name in outs[0]:
        if name == PROVENANCE_FILE:
            a, b = (mask_wall_clock(json.loads(o[name])) for o in outs)
            assert a == b
        else:
            assert outs[0][name] == outs[1][name], f"{name} differs between two identical runs"
    prov = json.loads(outs[0][PROVENANCE_FILE])
    assert prov["total_wall_s"] > 0 and prov["stage_wall_s"]
    # the wall-clock values live only in provenance.json
    html = outs[0]["index.html"].decode()
    assert prov["generated_at_utc"] not in html


def test_captions_name_existing_data_files(tmp_path):
    out = tmp_path / "r"
    result = build_report(out, small_workloads()[1:], ReportOptions(quick=True, n_boot=10))
    html = result.html.read_text()
    named = set(re.findall(r"Data: <code>(data/[^<]+)</code>", html))
    assert named and all((out / n).is_file() for n in named)
    assert html.count("<figure") == len(re.findall(r"Numbers: <em>(modelled|measured|measured and modelled)</em>", html))
    for s in result.sections:
        assert s.status in ("ok", "partial", "not_run", "unavailable")
        if s.status == "unavailable":
            assert s.missing  # says why


def test_simkv_report_cli_on_a_user_trace(cli, tmp_path, mooncake_trace):
    from simkv.trace import save_trace

    trace = tmp_path / "mine.parquet"
    save_trace(mooncake_trace.head(500), trace)
    out = tmp_path / "rep"
    res = cli("report", "--trace", str(trace), "--model", "llama-3.1-8b", "--quick", "--out", str(out))
    assert res.exit_code == 0, res.stderr
    assert "index.html" in res.stdout
    assert (out / "index.html").is_file() and (out / "report.md").is_file()
    assert (out / "data" / "grid.csv").is_file() and (out / "data" / "bills.csv").is_file()
    md = (out / "report.md").read_text()
    assert "no measured results were given" in md
    # --force replaces the report files and keeps the user's own
    (out / "notes.txt").write_text("mine")
    res = cli("report", "--trace", str(trace), "--model", "llama-3.1-8b", "--quick", "--out", str(out))
    assert res.exit_code == 2
    res = cli("report", "--trace", str(trace), "--model", "llama-3.1-8b", "--quick", "--out", str(out),
              "--force")
    assert res.exit_code == 0, res.stderr
    assert (out / "notes.txt").read_text() == "mine"
    # the rerun went through the same stages and reused every one (nothing changed)
    stages = json.loads((out / "run" / "manifest.json").read_text())["stages"]
    assert {st["name"]: st["status"] for st in stages if st["status"] != "skipped"} == {
        name: "cached" for name in ("workloads", "simulate", "bills", "grid", "recommend",
                                    "lifecycle", "latency", "bench")}
