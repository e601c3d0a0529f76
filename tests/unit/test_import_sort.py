"""`trace import` of input out of time order (the external merge sort, simkv/trace/import_sort.py)
writes the same bytes as the whole-file importer.

The oracle is the whole-file reader (``read_alibaba`` / ``read_openai_log``: every line parsed
in file order, then ``numpy.argsort(kind="stable")`` by arrival) saved with ``save_trace``.
The sorted path parses runs of a few lines, sorts each by (arrival, line number), spills and
merges them; the run sizes here (1, 2, 3, 5 requests) and a merge fan-in of 2 or 3 force many
runs and several rounds of group merges, with ties in time (timestamps rounded to 0.1 s, or a
handful of distinct values) so that the line-number tie-break is what decides the order; merge
buffers of 1 and 4 requests (shared by the runs) make the merge take its rounds of "everything
up to the smallest last key" across refills.
Chunk sizes 1, 7, 4096 and the whole input.  Also: a bad line's number, the temporary folder
removed on success, on error and on Ctrl-C, and the free-disk check.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cli.main import build_app, run
from simkv.trace import import_sort, save_trace
from simkv.trace.import_sort import SortedImport
from simkv.trace.import_stream import scan_import
from simkv.trace.importers import read_alibaba, read_openai_log
from tests.unit.test_import_stream import WORDS, _alibaba_rows

CHUNKS = (1, 7, 4096, None)


def _cli(argv) -> int:
    try:
        return run(build_app(), argv, prog="simkv")
    except SystemExit as exc:
        return int(exc.code)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _shuffled_logs(seed: int, n: int, distinct_times: int) -> list[dict]:
    """Request logs with lines shuffled and only ``distinct_times`` timestamps (ties)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    times = 1_700_000_000.0 + np.round(rng.uniform(0, 600, distinct_times), 1)
    rows = []
    for _ in range(n):
        row = {"timestamp": float(rng.choice(times)),
               "model": str(rng.choice(["m-a", "m-b", "m-c"])),
               "messages": [{"role": "system", "content": "You help. " * int(rng.integers(1, 9))},
                            {"role": "user",
                             "content": " ".join(rng.choice(WORDS, int(rng.integers(1, 60))))}]}
        if rng.random() < 0.3:  # ISO-8601 times sort with the numbers
            row["timestamp"] = np.datetime_as_string(
                np.datetime64(int(row["timestamp"] * 1000), "ms"), unit="ms") + "Z"
        if rng.random() < 0.7:
            row["session_id"] = f"s{int(rng.integers(0, 5))}"
        if rng.random() < 0.5:
            row["tenant"] = f"t{int(rng.integers(0, 3))}"
        if rng.random() < 0.5:
            row["usage"] = {"completion_tokens": int(rng.integers(0, 99))}
        rows.append(row)
    return rows


def _check(src: Path, fmt: str, oracle, d: Path, run_requests: int, extra=()) -> None:
    want = d / "oracle.parquet"
    save_trace(oracle, want)
    for n in CHUNKS:
        out = d / f"out{n}.parquet"
        chunk = [] if n is None else ["--chunk-requests", str(n)]
        assert _cli(["trace", "import", str(src), str(out), "--format", fmt, *extra, *chunk,
                     "--sort-run-requests", str(run_requests), "--force"]) == 0
        assert out.read_bytes() == want.read_bytes(), (fmt, n, run_requests)


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """tempfile's directory, to see that the sort leaves nothing behind."""
    root = tmp_path / "tmproot"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(2, 60),
       run_requests=st.sampled_from([1, 2, 3, 5]), fan_in=st.sampled_from([2, 3, 64]),
       merge_requests=st.sampled_from([1, 4, 1 << 16]))
def test_alibaba_shuffled_import_equals_whole(seed, n, run_requests, fan_in, merge_requests):
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        d = Path(tmp)
        mp.setattr(import_sort, "MERGE_FAN_IN", fan_in)
        mp.setattr(import_sort, "DEFAULT_MERGE_REQUESTS", merge_requests)
        src = _write(d / "in.jsonl", _alibaba_rows(seed, n, ordered=False))
        _check(src, "alibaba", read_alibaba(src), d, run_requests)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(2, 40), distinct=st.integers(1, 8),
       run_requests=st.sampled_from([1, 3, 5]), fan_in=st.sampled_from([2, 3]),
       block_tokens=st.sampled_from([16, 64]), merge_requests=st.sampled_from([1, 4, 1 << 16]))
def test_openai_log_shuffled_import_equals_whole(seed, n, distinct, run_requests, fan_in,
                                                 block_tokens, merge_requests):
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        d = Path(tmp)
        mp.setattr(import_sort, "MERGE_FAN_IN", fan_in)
        mp.setattr(import_sort, "DEFAULT_MERGE_REQUESTS", merge_requests)
        src = _write(d / "in.jsonl", _shuffled_logs(seed, n, distinct))
        _check(src, "openai-log", read_openai_log(src, block_tokens=block_tokens), d,
               run_requests, ["--block-tokens", str(block_tokens)])


def test_mooncake_shuffled_as_alibaba_equals_whole(mooncake_trace, tmp_path, monkeypatch,
                                                   tmp_root):
    """The shipped Mooncake trace as Alibaba lines, shuffled, timestamps rounded to 10 s (many
    ties); runs of 97 requests merged three at a time."""
    mc = mooncake_trace
    rows = [{"chat_id": i, "parent_chat_id": i - 1 if i % 3 else -1,
             "timestamp": float(np.round(mc.arrival_s[i], -1)),
             "input_length": int(mc.input_tokens[i]),
             "output_length": int(mc.output_tokens[i]), "type": ("text", "file")[i % 2],
             "hash_ids": mc.blocks(i).tolist()} for i in range(mc.n_requests)]
    order = np.random.default_rng(5).permutation(len(rows))
    src = _write(tmp_path / "mc_shuffled.jsonl", [rows[i] for i in order])
    monkeypatch.setattr(import_sort, "MERGE_FAN_IN", 3)
    monkeypatch.setattr(import_sort, "DEFAULT_MERGE_REQUESTS", 40)
    _check(src, "alibaba", read_alibaba(src, block_tokens=512), tmp_path, 97,
           ["--block-tokens", "512"])
    assert list(tmp_root.iterdir()) == []


def test_merge_of_small_buffers_equals_whole(tmp_path):
    """The merge alone, buffers of one request per run, against the whole reader's trace."""
    from simkv.trace.model import concat_traces

    src = _write(tmp_path / "in.jsonl", _alibaba_rows(21, 50, ordered=False))
    scan = scan_import(src, "alibaba")
    with SortedImport(scan, run_requests=6, merge_requests=1) as s:
        got = concat_traces(list(s.chunks(7)))
    want = read_alibaba(src)
    assert got.equals(want) and got.meta == want.meta


def test_runs_and_group_merges(tmp_path, tmp_root):
    """20 requests in runs of 3: 7 runs; with fan-in 2 they are merged in groups (7 -> 4 -> 2)
    before the last merge; the chunks have exactly the asked size."""
    src = _write(tmp_path / "in.jsonl", _alibaba_rows(11, 20, ordered=False))
    scan = scan_import(src, "alibaba")
    assert not scan.in_order and scan.n_requests == 20
    with SortedImport(scan, run_requests=3, fan_in=64) as s:
        assert [r.n_requests for r in s.runs] == [3, 3, 3, 3, 3, 3, 2]
        assert sum(r.n_blocks for r in s.runs) == scan.n_blocks
    with SortedImport(scan, run_requests=3, fan_in=2) as s:
        assert [r.n_requests for r in s.runs] == [12, 8]
        sizes = [c.n_requests for c in s.chunks(6)]
        folder = s.path
        assert len(list(folder.iterdir())) == 4  # two runs, two files each
    assert sizes == [6, 6, 6, 2]
    assert not folder.exists() and list(tmp_root.iterdir()) == []


def test_bad_line_found_while_sorting_names_its_line(tmp_path, capsys, tmp_root):
    """A log's prompts are first tokenized in the sort's pass (the scan reads only times and
    models): the bad line's own number is reported, exit 2, nothing left behind."""
    rows = _shuffled_logs(3, 30, 4)
    rows[17]["messages"] = "not a list"
    src = _write(tmp_path / "bad.jsonl", rows)
    dst = tmp_path / "o.parquet"
    assert _cli(["trace", "import", str(src), str(dst), "--format", "openai-log",
                 "--sort-run-requests", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "line 18" in err and "messages" in err and "\n" not in err
    assert not dst.exists() and list(tmp_root.iterdir()) == []


def test_bad_alibaba_line_out_of_order_names_its_line(tmp_path, capsys, tmp_root):
    rows = _alibaba_rows(4, 30, ordered=False)
    rows[21]["hash_ids"] = [1, 2]
    src = _write(tmp_path / "bad.jsonl", rows)
    assert _cli(["trace", "import", str(src), str(tmp_path / "o.parquet"), "--format",
                 "alibaba", "--sort-run-requests", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "line 22" in err and "hash_ids" in err and "\n" not in err


@pytest.mark.parametrize("where", ["spill", "merge"])
def test_ctrl_c_removes_the_temporary_folder(tmp_path, monkeypatch, tmp_root, where):
    src = _write(tmp_path / "in.jsonl", _alibaba_rows(8, 40, ordered=False))
    scan = scan_import(src, "alibaba")
    if where == "spill":
        real = SortedImport._write
        calls = []

        def interrupted(self, batches):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real(self, batches)

        monkeypatch.setattr(SortedImport, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with SortedImport(scan, run_requests=4) as s:
            for i, _ in enumerate(s.chunks(5)):
                if i == 2:
                    raise KeyboardInterrupt
    assert list(tmp_root.iterdir()) == []


def test_not_enough_disk_exits_2_before_writing(tmp_path, monkeypatch, capsys, tmp_root):
    """The estimate (Alibaba: 54 bytes a request and 8 a block, both counted by the scan) is
    checked before the first run is written."""
    src = _write(tmp_path / "in.jsonl", _alibaba_rows(9, 30, ordered=False))
    usage = import_sort.shutil.disk_usage(tmp_root)
    monkeypatch.setattr(import_sort.shutil, "disk_usage",
                        lambda p: usage._replace(free=10 << 20))
    writes = []
    monkeypatch.setattr(SortedImport, "_write", lambda self, b: writes.append(1))
    dst = tmp_path / "o.parquet"
    assert _cli(["trace", "import", str(src), str(dst), "--format", "alibaba"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not enough free disk" in err and "TMPDIR" in err and "\n" not in err
    assert not writes and not dst.exists() and list(tmp_root.iterdir()) == []
    scan = scan_import(src, "alibaba")
    blocks = sum(-(-r["input_length"] // 16) for r in _alibaba_rows(9, 30, ordered=False))
    assert scan.n_blocks == blocks
    assert SortedImport(scan)._estimate_bytes() == 30 * 54 + blocks * 8


def test_bad_sort_run_requests_exits_2(tmp_path, capsys):
    src = _write(tmp_path / "in.jsonl", _alibaba_rows(1, 5, ordered=False))
    assert _cli(["trace", "import", str(src), str(tmp_path / "o.parquet"), "--format",
                 "alibaba", "--sort-run-requests", "0"]) == 2
    assert "--sort-run-requests" in capsys.readouterr().err
