import json

from simkv.repro import compare_runs


def _tree(root, started, body):
    (root / "data").mkdir(parents=True)
    (root / "data" / "provenance.json").write_text(json.dumps({"seed": 1, "started_at": started}))
    (root / "report.md").write_text(f"{body}\n")
    (root / "data" / "grid.csv").write_text(body)


def test_wall_clock_masked_but_results_compared(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _tree(a, "2026-11-30T04:00:00", "x,1")
    _tree(b, "2026-11-30T05:11:11", "x,1")
    _tree(c, "2026-11-30T05:11:11", "x,2")
    assert compare_runs(a, b, ("started_at",)) == []
    # a wall-clock value anywhere but a listed JSON key is a difference
    (b / "report.md").write_text("x,1 at 2026-11-30T05:11:11\n")
    assert compare_runs(a, b, ("started_at",)) == ["differs: report.md"]
    diffs = compare_runs(a, c, ("started_at",))
    assert "differs: data/grid.csv" in diffs and "differs: report.md" in diffs
    (c / "extra.txt").write_text("")
    assert "only in second run: extra.txt" in compare_runs(a, c, ("started_at",))
