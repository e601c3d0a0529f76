"""The stage pipeline: registry, cache keys, manifests, reuse and the renderer's isolation.

Expected values come from the definitions in docs/pipeline.md, not from the code under test:
a stage reruns exactly when something its key covers changes (checked by changing one input
at a time), and its manifest's file hashes are recomputed here with hashlib.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simkv.atomicio import read_manifest
from simkv.codehash import closure, code_sha256
from simkv.pipeline.inputs import SHIPPED_PRICEBOOKS, RunInputs
from simkv.pipeline.runner import ordered_stages, run_stages
from simkv.pipeline.stage import STAGES, Stage, StageOutput
from simkv.pipeline.workload import WorkloadInput
from simkv.report.model import ReportOptions

ROOT = Path(__file__).resolve().parents[2]
SIMULATORS = ("simkv.cache", "simkv.sizing", "simkv.latency", "simkv.economics", "simkv.workloads")


def _workloads(trace) -> tuple[WorkloadInput, ...]:
    t = trace.head(120).with_model("llama-3.1-8b")
    return (WorkloadInput(name="moon", trace=t, model="llama-3.1-8b", source="mooncake head",
                          sha256="0" * 64),)


def _statuses(runs) -> dict[str, str]:
    """Status of each stage that ran or was reused (the harness's measured stage, registered
    once any test imports harness.stage, is skipped under --quick)."""
    return {r.name: r.status for r in runs if r.status != "skipped"}


def test_the_issue_stages_are_registered_in_dependency_order():
    import simkv.pipeline.builtin  # noqa: F401 - registers simkv's stages

    names = [s.name for s in ordered_stages()]
    assert {"workloads", "simulate", "grid", "bills", "recommend", "lifecycle", "latency",
            "bench"} <= set(names)
    for s in ordered_stages():
        assert all(names.index(n) < names.index(s.name) for n in s.needs)


def test_a_stage_name_registered_twice_is_refused():
    import simkv.pipeline.builtin  # noqa: F401 - registers simkv's stages

    with pytest.raises(ValueError, match="twice"):
        STAGES.register("grid", Stage("grid", "again", lambda ctx: StageOutput()))


def test_code_hash_follows_imports_and_not_data():
    grid = closure("simkv.pipeline.stages.grid")
    bills = closure("simkv.pipeline.stages.bills")
    assert "simkv.sizing.grid" in grid or "simkv.sizing" in grid
    assert "simkv.economics.pricebook" in bills
    assert not any(m.startswith("simkv.economics") for m in grid)  # grid reads no price book
    assert len(code_sha256("simkv.pipeline.stages.grid")) == 64


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, mooncake_trace):
    """Every simkv stage once over a 120-request trace, with its own copy of the price books."""
    import simkv.pipeline.builtin  # noqa: F401 - registers simkv's stages

    root = tmp_path_factory.mktemp("small-run")
    shutil.copytree(SHIPPED_PRICEBOOKS, root / "books")
    opts = ReportOptions(quick=True, n_boot=5, pricebooks_dir=root / "books",
                         bench_path=root / "none.json")
    inputs = RunInputs(given=_workloads(mooncake_trace), given_digest="d" * 64)
    first = _statuses(run_stages(opts, root / "run", inputs))
    return root, opts, inputs, first


def test_code_hash_covers_function_level_imports_and_changes_with_the_source(tmp_path):
    pkg = tmp_path / "simkv"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from simkv.sub import b\n    return b.X\n")
    (pkg / "sub" / "b.py").write_text("X = 1\n")
    (pkg / "c.py").write_text("import numpy\n")  # not imported by a: not in its hash
    assert set(closure("simkv.a", root=tmp_path)) == {"simkv", "simkv.a", "simkv.sub", "simkv.sub.b"}
    before = code_sha256("simkv.a", root=tmp_path)
    (pkg / "c.py").write_text("import numpy  # edited\n")
    assert code_sha256.__wrapped__("simkv.a", root=tmp_path) == before
    (pkg / "sub" / "b.py").write_text("X = 2\n")
    assert code_sha256.__wrapped__("simkv.a", root=tmp_path) != before


def test_second_run_reuses_every_stage_and_a_pricebook_edit_reruns_only_its_readers(
        tmp_path, small_run):
    src, _, inputs, first = small_run
    shutil.copytree(src, tmp_path, dirs_exist_ok=True)
    books, run = tmp_path / "books", tmp_path / "run"
    opts = ReportOptions(quick=True, n_boot=5, pricebooks_dir=books,
                         bench_path=src / "none.json")
    assert set(first.values()) == {"ran"}, first
    assert not (run / "bills").samefile(src / "run" / "bills")
    second = _statuses(run_stages(opts, run, inputs))
    assert set(second.values()) == {"cached"}, second
    # edit one price book: exactly the stages that read price books run again
    target = sorted(books.glob("*.yaml"))[0]
    target.write_text(target.read_text() + "\n# edited\n")
    readers = {s.name for s in ordered_stages() if "pricebooks" in s.reads}
    assert readers == {"bills", "recommend"}
    third = _statuses(run_stages(opts, run, inputs))
    assert {n for n, st in third.items() if st == "ran"} == readers, third
    # a damaged output file is not reused
    victim = run / "grid" / "grid.parquet"
    victim.write_bytes(b"not parquet")
    fourth = _statuses(run_stages(opts, run, inputs))
    assert fourth["grid"] == "ran" and fourth["simulate"] == "cached"


def test_manifest_records_inputs_config_code_and_file_hashes(tmp_path, mooncake_trace):
    import simkv.pipeline.builtin  # noqa: F401 - registers simkv's stages

    opts = ReportOptions(quick=True, n_boot=5, seed=7, bench_path=tmp_path / "none.json")
    run = tmp_path / "run"
    run_stages(opts, run, RunInputs(given=_workloads(mooncake_trace)), names=["grid"])
    man = read_manifest(run / "grid" / "manifest.json")
    assert man["kind"] == "simkv.stage" and man["stage"] == "grid" and man["seed"] == 7
    assert man["config"] == {"quick": True}
    assert set(man["upstream"]) == {"workloads", "simulate"}
    assert man["code_sha256"] == code_sha256("simkv.pipeline.stages.grid")
    assert man["tables"]["grid"]["schema_version"] == 1 and man["tables"]["grid"]["rows"] > 0
    assert "commit" in man["git"] and man["simkv_version"]
    for rel, digest in man["files"].items():
        assert hashlib.sha256((run / "grid" / rel).read_bytes()).hexdigest() == digest
    # the in-memory workloads have no digest: that stage is never cached, its readers are
    assert read_manifest(run / "workloads" / "manifest.json")["cache_key"] is None
    top = read_manifest(run / "manifest.json")
    assert [s["name"] for s in top["stages"]] == ["workloads", "simulate", "grid"]


@pytest.mark.parametrize("which", ["full", "empty"])
def test_the_renderer_imports_no_simulator(tmp_path, small_run, which):
    """A fresh interpreter renders a run folder (every stage's tables, or none at all); no
    simulator module is imported, and a section whose stage did not run says so."""
    run = small_run[0] / "run" if which == "full" else tmp_path / "run"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from simkv.report.assemble import render_run\n"
        "from simkv.report.model import ReportOptions\n"
        f"render_run(Path({str(run)!r}), Path({str(tmp_path / 'out')!r}), ReportOptions(quick=True))\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({SIMULATORS!r}))\n"
        "print(json.dumps(bad))\n").replace("import sys\n", "import json, sys\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
    prov = json.loads((tmp_path / "out" / "data" / "provenance.json").read_text())
    status = {s["key"]: s["status"] for s in prov["sections"]}
    if which == "full":
        assert status["grid"] == "ok" and status["bills"] in ("ok", "partial")
        assert (tmp_path / "out" / "data" / "grid.csv").is_file()
    else:
        assert set(status.values()) <= {"unavailable", "not_run"}
        assert all(s["missing"] for s in prov["sections"] if s["status"] == "unavailable")


def test_measured_stage_is_a_plugin_of_the_harness_and_skips_quick_runs():
    from importlib.metadata import entry_points

    from simkv.pipeline.plugins import load_plugin_stages

    eps = {e.name: e.value for e in entry_points(group="simkv.stages")}
    assert eps.get("measured") == "harness.stage"
    assert "measured" in load_plugin_stages()
    stage = STAGES.get("measured")
    assert stage.module == "harness.stage" and "harness" in stage.code_roots
    assert not stage.enabled(ReportOptions(quick=True, run_engine=False))
    assert stage.enabled(ReportOptions(run_engine=True))
    assert not stage.enabled(ReportOptions(run_engine=True, measured_path=Path("v.json")))


def test_measured_stage_without_an_engine_says_why_and_is_not_cached(tmp_path, monkeypatch):
    from harness import stage as measured

    monkeypatch.setenv("SIMKV_ENGINE_PYTHON", str(tmp_path / "no-python"))
    out = measured.run(None)
    assert out.facts["results"] is None and "make engine" in out.facts["reason"]
    assert out.cacheable is False


def test_simkv_run_lists_and_runs_stages(cli, tmp_path):
    res = cli("run", "--list")
    assert res.exit_code == 0 and "grid" in res.stdout and "pricebooks" in res.stdout
    res = cli("run", "--stage", "bench", "--out", str(tmp_path / "run"))
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "run" / "bench" / "manifest.json").is_file()
    assert not (tmp_path / "run" / "grid").exists()
    res = cli("run", "--stage", "no-such-stage", "--out", str(tmp_path / "run"))
    assert res.exit_code == 2 and "unknown stage" in res.stderr


def _refusing():
    def refuse(ctx):
        raise AssertionError("a section was built although nothing it reads changed")
    return refuse


def test_a_cached_render_gives_the_same_files(tmp_path, small_run, monkeypatch):
    """The second render of an unchanged run comes from the section cache (no section is
    built: each builder raises), byte for byte."""
    import functools

    import simkv.report.sections as sections
    from simkv.report.assemble import render_run
    from simkv.report.provenance import PROVENANCE_FILE, mask_wall_clock
    from simkv.report.sectioncache import CACHE_DIR

    run = tmp_path / "run"
    shutil.copytree(small_run[0] / "run", run)
    shutil.rmtree(run / CACHE_DIR, ignore_errors=True)
    opts = ReportOptions(quick=True, n_boot=5)
    outs = []
    for name in ("first", "second"):
        render_run(run, tmp_path / name, opts)
        outs.append({str(p.relative_to(tmp_path / name)): p.read_bytes()
                     for p in sorted((tmp_path / name).rglob("*")) if p.is_file()})
        if name == "first":
            cached = sorted(p.name for p in (run / CACHE_DIR).iterdir())
            monkeypatch.setattr(sections, "SECTIONS", tuple(
                (label, functools.wraps(build)(_refusing())) for label, build in sections.SECTIONS))
    assert len(cached) == 8 and outs[0].keys() == outs[1].keys()
    for rel in outs[0]:
        if rel == PROVENANCE_FILE:
            a, b = (mask_wall_clock(json.loads(o[rel])) for o in outs)
            assert a == b
        else:
            assert outs[0][rel] == outs[1][rel], rel
