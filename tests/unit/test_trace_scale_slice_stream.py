"""`trace slice` and `trace scale` streamed chunk by chunk write the same bytes as the whole-trace
path they replaced, for chunk sizes 1, 7, 4096 and the whole trace.

The oracle is that former path: ``load_trace`` the whole file, apply the whole-trace functions
(``by_time``, ``by_requests``, ``by_sessions``, ``scale_tokens``, ``rechunk``,
``stretch_time``; independent of the streamed code, which never calls them) and ``save_trace``.
The files are compared byte for byte, on random traces with sessions and session-less requests
(hypothesis) and on the shipped Mooncake trace through the CLI.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cli.main import build_app, run
from simkv.errors import InputError
from simkv.trace import save_trace
from simkv.trace.formats import save_trace_chunks
from simkv.trace.model import NO_ID, Trace
from simkv.trace.rechunk import rechunk
from simkv.trace.scale import FitTally, scale_chunks, scale_tokens, stretch_time, too_long
from simkv.trace.slice import by_requests, by_sessions, by_time, parse_range, slice_chunks
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

CHUNKS = (1, 7, 4096, None)


def _with_sessions(trace: Trace, seed: int) -> Trace:
    """Sessions 0..5 and session-less requests; content hashes so re-blocking composes them."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    sid = rng.integers(-1, 6, trace.n_requests)
    sid[sid < 0] = NO_ID
    return Trace.from_arrays(
        block_tokens=trace.block_tokens, arrival_s=trace.arrival_s,
        input_tokens=trace.input_tokens, output_tokens=trace.output_tokens,
        block_offsets=trace.block_offsets, block_hashes=trace.block_hashes, session_ids=sid,
        content_hashes=(trace.block_hashes % np.uint64(23)) + np.uint64(1000))


def _oracle_slice(trace: Trace, start_s, end_s, requests, sessions, seed) -> Trace:
    if start_s is not None or end_s is not None:
        trace = by_time(trace, start_s, end_s)
    if requests is not None:
        trace = by_requests(trace, *parse_range(requests, trace.n_requests))
    if sessions is not None:
        trace = by_sessions(trace, sessions, seed)
    return trace


def _oracle_scale(trace: Trace, factor, block_tokens, time_factor) -> Trace:
    if factor is not None:
        trace = scale_tokens(trace, factor)
    elif block_tokens is not None:
        trace = rechunk(trace, block_tokens)
    return stretch_time(trace, time_factor)


def _bytes_equal(streamed: Path, oracle: Trace, d: Path) -> None:
    want = d / f"oracle{streamed.suffix}"
    save_trace(oracle, want)
    assert streamed.read_bytes() == want.read_bytes()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 100_000),
       start_s=st.one_of(st.none(), st.floats(0.0, 400.0)),
       length_s=st.one_of(st.none(), st.floats(1.0, 600.0)),
       requests=st.one_of(st.none(), st.sampled_from(["0:50", "13:", ":7", "40:41", "5:500"])),
       sessions=st.one_of(st.none(), st.integers(1, 12)), sample_seed=st.integers(0, 3))
def test_slice_streamed_equals_whole(seed, start_s, length_s, requests, sessions, sample_seed):
    trace = _with_sessions(random_trace(seed, n_requests=120), seed)
    end_s = None if length_s is None else (start_s or 0.0) + length_s
    try:
        want = _oracle_slice(trace, start_s, end_s, requests, sessions, sample_seed)
    except InputError as exc:  # "13:" past the window's end: the same error, streamed
        want = str(exc)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = d / "src.parquet"
        save_trace(trace, src)
        source = TraceSource.of(src)
        for n in CHUNKS:
            out = d / f"out{n}.parquet"
            gen = slice_chunks(lambda n=n: source.chunks(n), start_s=start_s, end_s=end_s,
                               requests=requests, sessions=sessions, seed=sample_seed)
            if isinstance(want, str):
                with pytest.raises(InputError) as err:
                    save_trace_chunks(gen, out)
                assert str(err.value) == want and not out.exists()
                continue
            if not want.n_requests:
                with pytest.raises(InputError, match="no requests"):
                    save_trace_chunks(gen, out)
                assert not out.exists()
                continue
            tally = FitTally(max_model_len=60)
            save_trace_chunks(tally.count(gen), out)
            _bytes_equal(out, want, d)
            assert tally.requests == want.n_requests
            assert tally.cannot_run == [r["request"] for r in too_long(want, 60)]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 100_000),
       how=st.sampled_from([("factor", 0.5), ("factor", 0.25), ("factor", 2.0),
                            ("blocks", 32), ("blocks", 64), ("blocks", 8), ("blocks", 4),
                            ("time", None)]),
       time_factor=st.sampled_from([1.0, 0.5, 3.0, 0.0]))
def test_scale_streamed_equals_whole(seed, how, time_factor):
    trace = _with_sessions(random_trace(seed, n_requests=80), seed)
    factor = how[1] if how[0] == "factor" else None
    blocks = how[1] if how[0] == "blocks" else None
    want = _oracle_scale(trace, factor, blocks, time_factor)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = d / "src.parquet"
        save_trace(trace, src)
        for n in CHUNKS:
            out = d / f"out{n}.parquet"
            save_trace_chunks(scale_chunks(TraceSource.of(src).chunks(n), factor=factor,
                                           block_tokens=blocks, time_factor=time_factor), out)
            _bytes_equal(out, want, d)


def _cli(argv) -> int:
    try:
        return run(build_app(), argv, prog="simkv")
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize("n", CHUNKS)
def test_mooncake_cli_streamed_equals_whole(mooncake_path, mooncake_trace, tmp_path, n, capsys):
    """Mooncake JSONL in, Parquet and JSONL out: each command's file equals the oracle's; its
    sessions are all absent, so a session sample draws single requests."""
    chunk = [] if n is None else ["--chunk-requests", str(n)]
    mc = mooncake_trace
    cases = [
        (["slice", "--start-s", "600", "--end-s", "1800.5"], ".parquet",
         by_time(mc, 600, 1800.5)),
        (["slice", "--requests", "100:2900", "--start-s", "30"], ".jsonl",
         by_requests(by_time(mc, 30, None), 100, 2900)),
        (["slice", "--sessions", "250", "--seed", "3", "--end-s", "2000"], ".parquet",
         by_sessions(by_time(mc, None, 2000), 250, 3)),
        (["scale", "--factor", "0.125", "--time-factor", "0.5"], ".parquet",
         stretch_time(scale_tokens(mc, 0.125), 0.5)),
        (["scale", "--block-tokens", "1024"], ".jsonl", rechunk(mc, 1024)),
        (["scale", "--time-factor", "2"], ".jsonl", stretch_time(mc, 2.0)),
    ]
    for i, (args, suffix, want) in enumerate(cases):
        if suffix == ".jsonl" and want.block_tokens != 512:
            suffix = ".parquet"  # Mooncake JSONL holds only 512-token blocks
        out = tmp_path / f"c{i}{suffix}"
        assert _cli(["trace", args[0], str(mooncake_path), str(out), *args[1:], *chunk,
                     "--max-model-len", "16000", "--json"]) == 0, args
        _bytes_equal(out, want, tmp_path)
        report = capsys.readouterr().out
        assert f'"requests": {want.n_requests}' in report
        assert f'"cannot_run": {len(too_long(want, 16000))}' in report


def test_empty_slice_and_bad_window_exit_2(tmp_path, capsys):
    src = tmp_path / "t.parquet"
    save_trace(random_trace(1, n_requests=20), src)
    dst = tmp_path / "o.parquet"
    assert _cli(["trace", "slice", str(src), str(dst), "--start-s", "5000"]) == 2
    assert "no requests" in capsys.readouterr().err and not dst.exists()
    assert _cli(["trace", "slice", str(src), str(dst), "--start-s", "5", "--end-s", "5"]) == 2
    assert "--end-s" in capsys.readouterr().err
    assert _cli(["trace", "scale", str(src), str(dst), "--factor", "0.5",
                 "--chunk-requests", "0"]) == 2
    assert "--chunk-requests" in capsys.readouterr().err and not dst.exists()


def test_window_stops_reading_past_its_end(tmp_path):
    """--requests A:B and --end-s stop the stream once past them (a long file is not read to
    its end): the source yields no chunk beyond the one that ends the window."""
    trace = random_trace(2, n_requests=100)
    pulled = []

    def stream():
        for c in TraceSource.of(trace).chunks(10):
            pulled.append(c.n_requests)
            yield c

    out = list(slice_chunks(stream, requests="0:25"))
    assert sum(c.n_requests for c in out) == 25 and len(pulled) == 3
