"""`trace import` streamed (two passes, chunk by chunk) writes the same bytes as the whole-file
importer, for chunk sizes 1, 7, 4096 and the whole input.

The oracle is the whole-file reader (``read_alibaba`` / ``read_openai_log``, one pass over all
lines, then the stable sort) saved with ``save_trace``; the streamed path builds its chunks
with the same line parser but carries the numbering across chunks and takes the metadata from
its first pass, which is what these tests can catch going wrong.  Inputs: random Alibaba lines
and request logs (hypothesis: sessions, parents outside the file, several models, tenants) and
the shipped Mooncake trace rewritten as Alibaba lines.  Input out of time order goes through
the external merge sort (one run at the default run size here; many runs and merges in
tests/unit/test_import_sort.py) and gives the same file too.
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
from simkv.trace import save_trace
from simkv.trace.importers import read_alibaba, read_openai_log
from simkv.trace.model import Trace

CHUNKS = (1, 7, 4096, None)
WORDS = ("reset", "router", "firmware", "the", "Acme", "configuration", "please", "why")


def _cli(argv) -> int:
    try:
        return run(build_app(), argv, prog="simkv")
    except SystemExit as exc:
        return int(exc.code)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _alibaba_rows(seed: int, n: int, ordered: bool) -> list[dict]:
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    t = np.cumsum(rng.exponential(0.5, n))
    if not ordered:
        t = np.round(rng.permutation(t), 1)  # out of order, with ties for the stable sort
    rows = []
    for i in range(n):
        n_in = int(rng.integers(1, 120))
        parent = int(rng.integers(0, i)) + 100 if i and rng.random() < 0.6 else \
            (-1 if rng.random() < 0.8 else 10_000 + i)  # a parent not in the file
        base = int(rng.integers(0, 4))
        rows.append({"chat_id": 100 + i, "parent_chat_id": parent, "timestamp": float(t[i]),
                     "input_length": n_in, "output_length": int(rng.integers(1, 50)),
                     "type": str(rng.choice(["text", "search", "file"])), "turn": 1,
                     "hash_ids": [base * 1000 + k for k in range(-(-n_in // 16))]})
    return rows


def _log_rows(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    t = 1_700_000_000.0 + np.cumsum(rng.exponential(2.0, n))
    rows = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS, int(rng.integers(1, 60))))
        row = {"timestamp": float(t[i]), "model": str(rng.choice(["m-a", "m-b", "m-c"])),
               "messages": [{"role": "system", "content": "You help. " * int(rng.integers(1, 9))},
                            {"role": "user", "content": words}]}
        if rng.random() < 0.7:
            row["session_id"] = f"s{int(rng.integers(0, 5))}"
        if rng.random() < 0.5:
            row["tenant"] = f"t{int(rng.integers(0, 3))}"
        if rng.random() < 0.5:
            row["usage"] = {"completion_tokens": int(rng.integers(0, 99))}
        rows.append(row)
    return rows


def _check(src: Path, fmt: str, oracle: Trace, d: Path, extra=()) -> None:
    want = d / "oracle.parquet"
    save_trace(oracle, want)
    for n in CHUNKS:
        out = d / f"out{n}.parquet"
        chunk = [] if n is None else ["--chunk-requests", str(n)]
        assert _cli(["trace", "import", str(src), str(out), "--format", fmt, *extra, *chunk,
                     "--force"]) == 0
        assert out.read_bytes() == want.read_bytes(), (fmt, n)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 60), ordered=st.booleans())
def test_alibaba_import_streamed_equals_whole(seed, n, ordered):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = _write(d / "in.jsonl", _alibaba_rows(seed, n, ordered))
        _check(src, "alibaba", read_alibaba(src), d)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 40),
       block_tokens=st.sampled_from([16, 64]))
def test_openai_log_import_streamed_equals_whole(seed, n, block_tokens):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = _write(d / "in.jsonl", _log_rows(seed, n))
        _check(src, "openai-log", read_openai_log(src, block_tokens=block_tokens), d,
               ["--block-tokens", str(block_tokens)])


def test_mooncake_as_alibaba_import_streamed_equals_whole(mooncake_trace, tmp_path):
    """The shipped Mooncake trace as Alibaba lines (512-token hash_ids, every third request a
    follow-up of the one before)."""
    mc = mooncake_trace
    rows = [{"chat_id": i, "parent_chat_id": i - 1 if i % 3 else -1,
             "timestamp": float(mc.arrival_s[i]), "input_length": int(mc.input_tokens[i]),
             "output_length": int(mc.output_tokens[i]), "type": ("text", "file")[i % 2],
             "hash_ids": mc.blocks(i).tolist()} for i in range(mc.n_requests)]
    src = _write(tmp_path / "mc_alibaba.jsonl", rows)
    _check(src, "alibaba", read_alibaba(src, block_tokens=512), tmp_path,
           ["--block-tokens", "512"])


def test_bad_line_still_exits_2_naming_the_line(tmp_path, capsys):
    rows = _alibaba_rows(3, 10, True)
    rows[6]["input_length"] = "x"
    src = _write(tmp_path / "bad.jsonl", rows)
    dst = tmp_path / "o.parquet"
    assert _cli(["trace", "import", str(src), str(dst), "--format", "alibaba"]) == 2
    err = capsys.readouterr().err.strip()
    assert "line 7" in err and "\n" not in err and not dst.exists()


@pytest.mark.parametrize("fmt", ["alibaba", "openai-log"])
def test_empty_input_exits_2(tmp_path, capsys, fmt):
    src = tmp_path / "empty.jsonl"
    src.write_text("\n")
    assert _cli(["trace", "import", str(src), str(tmp_path / "o.parquet"), "--format", fmt]) == 2
    assert "no requests" in capsys.readouterr().err
