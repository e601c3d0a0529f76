"""``simulate_levels`` over a stream of chunks: bit-identical to the whole trace at one chunk.

The whole trace (one chunk) is the reference; chunk sizes 1, 7 and 4096 must give equal frames
and summaries, with lifecycle events falling inside chunks, on chunk boundaries and after the
last request (whose evicted bytes are charged to the last record).  Random traces (hypothesis,
with block tags, two models, template changes, quotas, tier changes, restarts) and the shipped
Mooncake trace read from its JSONL file and from Parquet.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.models import get_model
from simkv.sizing.hierarchy import simulate_levels, trace_span
from simkv.sizing.levels import Hierarchy, StorageLevel
from simkv.sizing.lifecycle import Event
from simkv.trace import load_trace
from simkv.trace.model import TAG_CODES
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

CHUNKS = (1, 7, 4096)
A, B = "llama-3.1-8b", "qwen3-8b"


def _level(name, blocks, chunk=16, **kw) -> StorageLevel:
    cap = None if blocks is None else blocks * get_model(A).block_bytes(chunk)
    return StorageLevel(name, cap, chunk, 1e10, 1e10, latency_s=1e-4, **kw)


def _tagged(trace, seed):
    """The trace with per-block tags (system first, then document/user), as the generator
    writes them, so template changes of one component salt only part of a prompt."""
    rng = np.random.default_rng(seed)
    lengths = np.diff(trace.block_offsets)
    codes = np.array([TAG_CODES["system"], TAG_CODES["document"], TAG_CODES["user"]], np.int8)
    tags = np.concatenate([np.sort(rng.choice(codes, int(n))) for n in lengths])
    return replace(trace, block_tags=tags)


def _same(a, b) -> None:
    assert a.summary == b.summary
    for name, frame in a.frames().items():
        pd.testing.assert_frame_equal(frame, b.frames()[name], check_exact=True)


def _events(t_end: float, kinds: list[str], frac: list[float]) -> list[Event]:
    out = []
    for k, f in zip(kinds, frac, strict=False):
        t = f * t_end
        params = {"template_change": {"component": "system"},
                  "quota": {"model": A, "capacity_bytes": 6 * get_model(A).block_bytes(16),
                            "level": "dram"},
                  "tier_upgrade": {"capacity_bytes": 4 * get_model(A).block_bytes(16),
                                   "level": "dram"},
                  "reset": {"level": "bucket"}, "model_upgrade": {"model": B}}.get(k, {})
        out.append(Event(t, k, params))
    return out


KINDS = ["replica_restart", "template_change", "quota", "tier_upgrade", "reset", "model_upgrade"]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000), placement=st.sampled_from(["inclusive", "exclusive"]),
       admission=st.sampled_from(["all", "second_access"]), ttl=st.sampled_from([None, 40.0]),
       kinds=st.lists(st.sampled_from(KINDS), max_size=4),
       frac=st.lists(st.floats(0.0, 1.3), min_size=4, max_size=4),
       coarse=st.booleans())
def test_levels_chunked_equal_whole(seed, placement, admission, ttl, kinds, frac, coarse):
    trace = _tagged(random_trace(seed, n_requests=120, models=(A, B)), seed)
    dram_chunk = 32 if coarse and placement == "inclusive" else 16
    h = Hierarchy((_level("hbm", 6, ttl_s=ttl), _level("dram", 12, chunk=dram_chunk),
                   _level("bucket", None, chunk=dram_chunk, persistent=True)),
                  placement=placement, admission=admission)
    events = _events(float(trace.arrival_s[-1]), kinds, frac)
    whole = simulate_levels(trace, h, events=events)
    for n in CHUNKS:
        _same(simulate_levels(trace, h, events=events, chunk_requests=n), whole)
    # an event exactly at a chunk's first request applies before it, as in the whole trace
    at = [Event(float(trace.arrival_s[7]), "replica_restart")]
    _same(simulate_levels(trace, h, events=at, chunk_requests=7), simulate_levels(trace, h, events=at))


def test_events_after_the_last_request_charge_the_last_record():
    trace = random_trace(3, n_requests=50).with_model(A)
    h = Hierarchy((_level("hbm", 4), _level("dram", 30)))
    late = [Event(float(trace.arrival_s[-1]) + 5.0, "tier_upgrade",
                  {"capacity_bytes": 0, "level": "dram"})]
    whole = simulate_levels(trace, h, events=late)
    assert whole.records.evicted_bytes.iloc[-1] > 0  # the dram level emptied after the end
    for n in CHUNKS:
        _same(simulate_levels(trace, h, events=late, chunk_requests=n), whole)


def test_not_keeping_records_streams_them_to_the_sink():
    trace = random_trace(4, n_requests=60).with_model(A)
    h = Hierarchy((_level("hbm", 4), _level("dram", 30)))
    whole = simulate_levels(trace, h)
    got: list[pd.DataFrame] = []
    res = simulate_levels(trace, h, chunk_requests=7, keep=False, sink=got.append)
    assert res.records is None and "records" not in res.frames()
    assert [len(f) for f in got] == [7] * 8 + [4]
    pd.testing.assert_frame_equal(pd.concat(got, ignore_index=True), whole.records)
    assert res.summary == whole.summary


@pytest.mark.parametrize("fmt, sizes", [("jsonl", (*CHUNKS, None)), ("parquet", (7, None))])
def test_mooncake_file_stream(mooncake_path, tmp_path, fmt, sizes):
    """The shipped trace read from its file chunk by chunk equals the loaded trace walked whole
    (every chunk size from the JSONL file; the Parquet reader's own chunks at two sizes)."""
    path = mooncake_path
    if fmt == "parquet":
        from simkv.trace.parquet import write_parquet

        path = tmp_path / "mc.parquet"
        write_parquet(load_trace(mooncake_path), path)
    trace = load_trace(path).with_model(A)
    h = Hierarchy((_level("hbm", 200, chunk=512), _level("dram", 2000, chunk=512)))
    events = [Event(float(trace.arrival_s[len(trace.arrival_s) // 3]), "replica_restart")]
    whole = simulate_levels(trace, h, events=events)
    assert trace_span(TraceSource.of(path)) == trace.duration_s
    for n in sizes:
        _same(simulate_levels(TraceSource.of(path), h, model=A, events=events,
                              chunk_requests=n), whole)


def test_cli_chunk_size_changes_no_output(cli, mooncake_trace, tmp_path):
    """``simkv lifecycle --chunk-requests 7`` writes the same frames as one chunk does."""
    from simkv.trace import save_trace

    path = tmp_path / "head.parquet"
    save_trace(mooncake_trace.head(300), path)
    base = ("lifecycle", "--trace", str(path), "--model", A, "--hbm", "2GiB", "--dram", "8GiB",
            "--event", "60s:replica_restart", "--json")
    outs = []
    for n in ("7", "100000"):
        out = tmp_path / f"view{n}"
        res = cli(*base, "--chunk-requests", n, "--out-dir", str(out))
        assert res.exit_code == 0, res.stderr
        outs.append((res.stdout, {f: pd.read_parquet(out / f"{f}.parquet") for f in
                                  ("records", "timeline", "bytes_by_model", "components", "events")}))
    assert outs[0][0] == outs[1][0]
    assert len(outs[0][1]["records"]) == 300
    for name, frame in outs[0][1].items():
        pd.testing.assert_frame_equal(frame, outs[1][1][name], check_exact=True)
    bad = cli(*base, "--chunk-requests", "0")
    assert bad.exit_code == 2 and "--chunk-requests" in bad.stderr
