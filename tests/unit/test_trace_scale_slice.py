"""`simkv trace scale` / `slice`: token counts shrink with every hash chain kept; slices keep
whole requests; bad arguments exit 2 with one line."""

import numpy as np
import pytest

from simkv.cli.main import build_app, run
from simkv.errors import InputError
from simkv.trace import load_trace, save_trace
from simkv.trace.model import Trace
from simkv.trace.scale import scale_tokens, stretch_time, too_long
from simkv.trace.slice import by_requests, by_sessions, by_time, parse_range


def _trace():
    # request 0: 2 full blocks + 100 tokens (3 blocks); request 1: shares 2, 1 block exactly;
    # request 2: 1 block of 1 token
    return Trace.from_arrays(block_tokens=512, arrival_s=[0.0, 10.0, 30.0],
                             input_tokens=[1124, 1536, 1], output_tokens=[40, 9, 1],
                             block_offsets=[0, 3, 6, 7],
                             block_hashes=np.array([1, 2, 3, 1, 2, 4, 9], dtype=np.uint64),
                             session_ids=[7, 7, 8])


def test_scale_keeps_chains_and_counts_tokens_block_by_block():
    s = scale_tokens(_trace(), 0.125)
    assert s.block_tokens == 64
    np.testing.assert_array_equal(s.block_hashes, _trace().block_hashes)
    np.testing.assert_array_equal(s.block_offsets, _trace().block_offsets)
    # 2 x 64 + ceil(100 / 8) = 141; 2 x 64 + 64 = 192; a 1-token block stays 1 token
    assert s.input_tokens.tolist() == [141, 192, 1]
    assert s.output_tokens.tolist() == [5, 1, 1]  # round(40/8), round(9/8), at least 1
    assert s.meta["scaled_from"]["block_tokens"] == 512


def test_scale_refuses_a_fractional_block():
    with pytest.raises(InputError, match="whole number"):
        scale_tokens(_trace(), 0.3)


def test_stretch_time_and_too_long():
    t = stretch_time(_trace(), 0.5)
    assert t.arrival_s.tolist() == [0.0, 5.0, 15.0]
    assert [r["request"] for r in too_long(_trace(), 1200)] == [1]  # 1536 + 9 > 1200; 1124 + 40 fits


def test_slices():
    tr = _trace()
    assert by_time(tr, 5.0, 31.0).input_tokens.tolist() == [1536, 1]
    assert by_requests(tr, *parse_range("1:", tr.n_requests)).n_requests == 2
    sess = by_sessions(tr, 1, seed=0)
    assert set(sess.session_ids.tolist()) in ({7}, {8})  # whole sessions only
    assert by_sessions(tr, 1, seed=0).equals(sess)      # seeded
    with pytest.raises(InputError):
        parse_range("3:1", 3)


def _cli(argv) -> int:
    try:
        return run(build_app(), argv, prog="simkv")
    except SystemExit as exc:
        return int(exc.code)


def test_cli_round_trip_and_bad_factor(tmp_path, capsys):
    src = tmp_path / "t.parquet"
    save_trace(_trace(), src)
    dst = tmp_path / "s.parquet"
    assert _cli(["trace", "scale", str(src), str(dst), "--factor", "0.125",
                 "--max-model-len", "150"]) == 0
    assert load_trace(dst).input_tokens.tolist() == [141, 192, 1]
    assert "exceed 150" in capsys.readouterr().err  # request 1 (192 + 1) is listed
    assert _cli(["trace", "scale", str(src), str(tmp_path / "x.parquet"), "--factor", "0.3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--factor" in err and "\n" not in err
    assert _cli(["trace", "slice", str(src), str(tmp_path / "y.parquet"), "--requests", "0:2"]) == 0
    assert load_trace(tmp_path / "y.parquet").n_requests == 2
