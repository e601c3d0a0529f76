"""The LMCache server's log read into per-request times and loop wakes (harness.lmcachelog).

The lines are copies of LMCache 0.5.6's own (``LMCACHE_LOG_LEVEL=DEBUG``, colour codes kept),
cut to the ones the reader uses plus some it must skip; expected times worked by hand.
"""

import datetime as dt

import pytest

from harness.lmcachelog import server_times
from simkv.errors import InputError

G, R = "\x1b[1m\x1b[32m", "\x1b[0m"


def _line(hms: str, level: str, msg: str) -> str:
    return f"{G}[2026-12-02 {hms}] LMCache {level}:{R} {msg} (x.py:1:lmcache.x)\n"


def _t(hms: str) -> float:
    return dt.datetime.strptime(f"2026-12-02 {hms}", "%Y-%m-%d %H:%M:%S,%f").timestamp()


LOG = [
    _line("06:18:44,900", "DEBUG", "L1 memory usage 0.00 below watermark 0.80; skipping eviction."),
    _line("06:18:45,611", "DEBUG", "MP lookup/prefetch start: session=cmpl-aaa-0-11111111"),
    _line("06:18:45,632", "DEBUG", "MP lookup/prefetch end: session=cmpl-aaa-0-11111111 found_count=0"),
    _line("06:18:45,641", "DEBUG", "vLLM block allocation: req_id=cmpl-aaa-0-11111111 new_blocks=3 "
          "new_tokens=300 block_ids=[1, 2, 3]"),
    _line("06:18:45,809", "DEBUG", "SM write reserved: 1 succeeded, 0 failed"),
    _line("06:18:45,811", "DEBUG", "SM write finished: 1 succeeded, 0 failed"),
    _line("06:18:45,900", "DEBUG", "L1 memory usage 0.01 below watermark 0.80; skipping eviction."),
    _line("06:18:46,013", "DEBUG", "Removed session for request_id=cmpl-aaa-0-11111111"),
    'INFO:     127.0.0.1:47766 - "GET /metrics HTTP/1.1" 200 OK\n',
    # b (1,100 tokens: 4 full chunks, 1 found -> expects 3) and c (700: 2 chunks, 0 found ->
    # expects 2) in flight together, c given blocks first
    _line("06:18:46,100", "DEBUG", "MP lookup/prefetch start: session=cmpl-bbb-0-22222222"),
    _line("06:18:46,110", "DEBUG", "MP lookup/prefetch end: session=cmpl-bbb-0-22222222 found_count=1"),
    _line("06:18:46,150", "DEBUG", "MP lookup/prefetch start: session=cmpl-ccc-0-33333333"),
    _line("06:18:46,160", "DEBUG", "MP lookup/prefetch end: session=cmpl-ccc-0-33333333 found_count=0"),
    _line("06:18:46,170", "DEBUG", "vLLM block allocation: req_id=cmpl-ccc-0-33333333 new_blocks=6"),
    _line("06:18:46,180", "DEBUG", "vLLM block allocation: req_id=cmpl-bbb-0-22222222 new_blocks=9"),
    # 3 chunks: c was given blocks first but expects 2, b expects 3 -> b's
    _line("06:18:46,300", "DEBUG", "SM write reserved: 3 succeeded, 0 failed"),
    # 2 chunks (one failed): c's, the one candidate left
    _line("06:18:46,350", "DEBUG", "SM write reserved: 1 succeeded, 1 failed"),
    _line("06:18:46,400", "DEBUG", "Removed session for request_id=cmpl-ccc-0-33333333"),
    # d (prompt of 1 chunk, found 1: expects nothing) has no store; the last line has no owner
    _line("06:18:46,410", "DEBUG", "MP lookup/prefetch start: session=cmpl-ddd-0-44444444"),
    _line("06:18:46,420", "DEBUG", "MP lookup/prefetch end: session=cmpl-ddd-0-44444444 found_count=1"),
    _line("06:18:46,430", "DEBUG", "vLLM block allocation: req_id=cmpl-ddd-0-44444444 new_blocks=3"),
    _line("06:18:46,500", "DEBUG", "SM write reserved: 2 succeeded, 0 failed"),
    _line("06:18:46,600", "DEBUG", "Removed session for request_id=cmpl-bbb-0-22222222"),
    _line("06:18:46,650", "DEBUG", "Removed session for request_id=cmpl-ddd-0-44444444"),
    _line("06:18:46,901", "INFO", "L1 memory usage 0.85 above watermark 0.80; triggering eviction."),
]


def _records():
    return [
        {"request": 0, "status": "ok", "sent_s": 0.5, "ttft_s": 0.2, "e2e_s": 0.4,
         "prompt_tokens": 300, "response_id": "cmpl-aaa"},
        {"request": 1, "status": "ok", "sent_s": 1.0, "ttft_s": 0.25, "e2e_s": 0.5,
         "prompt_tokens": 1100, "response_id": "cmpl-bbb"},
        {"request": 2, "status": "ok", "sent_s": 1.0, "ttft_s": 0.1, "e2e_s": 0.3,
         "prompt_tokens": 700, "response_id": "cmpl-ccc"},
        {"request": 3, "status": "ok", "sent_s": 1.3, "ttft_s": 0.05, "e2e_s": 0.1,
         "prompt_tokens": 300, "response_id": "cmpl-ddd"},
        {"request": 4, "status": "ok", "sent_s": 2.0, "ttft_s": 0.1, "e2e_s": 0.2,
         "prompt_tokens": 300, "response_id": None},
    ]


def test_times_and_wakes_from_the_servers_log(tmp_path):
    path = tmp_path / "lmcache.log"
    path.write_text("".join(LOG))
    t0 = _t("06:18:45,100")  # the replay's zero: the wake at 44.900 is before it
    st = server_times(path, _records(), t0, _t("06:18:46,700"))
    # a: lookup 45.611, store 45.809, end 46.013, less the zero
    assert st.times[0] == pytest.approx((0.511, 0.709, 0.913), abs=1e-6)
    # b: lookup 46.100, the 3-chunk store at 46.300, end 46.600
    assert st.times[1] == pytest.approx((1.0, 1.2, 1.5), abs=1e-6)
    # c: lookup 46.150, the 2-chunk store at 46.350, end 46.400
    assert st.times[2] == pytest.approx((1.05, 1.25, 1.3), abs=1e-6)
    # d stored nothing in the log: the client's send + TTFT (1.3 + 0.05), its end 46.650
    assert st.times[3] == pytest.approx((1.31, 1.35, 1.55), abs=1e-6)
    assert 4 not in st.times  # no response id: not matched (validate keeps its client times)
    assert st.matched == 4 and st.stores_from_log == 3
    # wakes after the zero, to the end plus one second: 45.900 and 46.901
    assert st.wakes_s == pytest.approx((0.8, 1.801), abs=1e-6)


def test_a_missing_log_is_a_clear_input_error(tmp_path):
    with pytest.raises(InputError, match="lmcache-log"):
        server_times(tmp_path / "nope.log", _records(), 0.0, 1.0)


def test_validate_refuses_a_log_without_this_replay(tmp_path):
    """A log from another server (or one not at DEBUG) has none of the replay's lines: validate
    says so instead of reporting the server's clock it did not have."""
    from harness.measure import Measurement, ReplayOptions
    from harness.validate import ValidateOptions, _server_clock

    path = tmp_path / "lmcache.log"
    path.write_text("".join(LOG))
    m = Measurement(trace=None, plan=[], records=_records(), summary={}, deltas={}, histograms={},
                    lmcache={}, after={}, load=None, t0_wall_s=_t("06:20:00,000"),
                    end_wall_s=_t("06:21:00,000"))  # after the log ends: nothing in the window
    opts = ValidateOptions(ReplayOptions(endpoints=("http://x",), out=tmp_path), lmcache_log=path)
    with pytest.raises(InputError, match="no lookups"):
        _server_clock(m, opts)
    m2 = Measurement(trace=None, plan=[], records=_records(), summary={}, deltas={}, histograms={},
                     lmcache={}, after={}, load=None, t0_wall_s=_t("06:18:45,100"),
                     end_wall_s=_t("06:18:46,700"))
    assert _server_clock(m2, opts).matched == 4
