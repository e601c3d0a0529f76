"""The streamed Belady bound equals the whole-stream one bit for bit, for any chunk and block size.

The reference twin is the previous code path, kept here: the whole trace as one stream
(``prepare_stream``), every next use at once (``kernels.next_use``) and MIN over all of it
(``kernels.belady_hits``, itself checked against an exhaustive search in test_grid.py).  The
streamed path goes through two spill files and carries its state over blocks.
"""

from __future__ import annotations

import os
import tempfile
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv import guard
from simkv.errors import InputError
from simkv.sizing import belady as bel
from simkv.sizing.belady import belady_curve
from simkv.sizing.belady_kernels import min_block
from simkv.sizing.kernels import belady_hits, next_use
from simkv.sizing.stream import prepare_stream
from simkv.trace import save_trace
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

BLOCKS = (1, 7, 4096, None)
CHUNKS = (1, 7, 4096, None)
ONE_MODEL = ("llama-3.1-8b",)


def reference_curve(trace, *, capacities_blocks=None, capacities_bytes=None, model=None):
    """The whole-stream ``belady_curve`` as it was before it streamed (the reference twin)."""
    if capacities_bytes is not None:
        stream = prepare_stream(trace, unit="bytes", model=model)
        if len(stream.distinct_sizes) > 1:
            raise InputError("the Belady bound is block-level; this trace mixes block sizes "
                             "(several models), so give capacities in blocks", where="--belady")
        size = int(stream.distinct_sizes[0]) if len(stream.distinct_sizes) else 1
        caps = [None if c is None else int(c) // size for c in capacities_bytes]
        col, shown = "capacity_bytes", list(capacities_bytes)
    else:
        stream = prepare_stream(trace, unit="blocks", model=model)
        caps = [None if c is None else int(c) for c in capacities_blocks]
        col, shown = "capacity_blocks", list(capacities_blocks)
    ids, n_obj, n = stream.ids, stream.n_objects, stream.n_accesses
    nxt = next_use(ids, n_obj)
    ratios = []
    for c in caps:
        c_eff = n_obj if c is None else c
        ratios.append(float(belady_hits(ids, nxt, n_obj, c_eff).sum()) / n if n else 0.0)
    return pd.DataFrame({col: pd.array(shown, dtype="Int64"), "belady_block_hit_ratio": ratios})


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)


caps_st = st.lists(st.one_of(st.none(), st.integers(0, 80)), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), caps=caps_st, n_req=st.integers(1, 120))
def test_blocks_any_chunk_and_block_size(seed, caps, n_req, tmp_path_factory):
    trace = random_trace(seed, n_requests=n_req, n_prefixes=6)
    ref = reference_curve(trace, capacities_blocks=caps)
    folder = tmp_path_factory.mktemp("spill")
    for block, chunk in zip(BLOCKS, CHUNKS[::-1], strict=True):
        got = belady_curve(TraceSource(trace=trace), capacities_blocks=caps,
                           block_accesses=block, chunk_requests=chunk, spill_dir=folder)
        _same(got, ref)
    assert os.listdir(folder) == []  # the spill directory is gone


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 100_000), caps=st.lists(st.one_of(st.none(), st.integers(0, 60)),
                                                   min_size=1, max_size=4),
       block=st.sampled_from(BLOCKS), chunk=st.sampled_from(CHUNKS))
def test_bytes_with_a_model_attached(seed, caps, block, chunk):
    trace = random_trace(seed, n_requests=80)
    size = int(prepare_stream(trace, unit="bytes", model=ONE_MODEL[0]).distinct_sizes[0])
    caps_b = [None if c is None else c * size + (c % 3) * (size // 3) for c in caps]
    ref = reference_curve(trace, capacities_bytes=caps_b, model=ONE_MODEL[0])
    got = belady_curve(trace, capacities_bytes=caps_b, model=ONE_MODEL[0], block_accesses=block,
                       chunk_requests=chunk)
    _same(got, ref)
    blocks = belady_curve(trace, capacities_blocks=caps, model=ONE_MODEL[0], block_accesses=block)
    _same(blocks, reference_curve(trace, capacities_blocks=caps, model=ONE_MODEL[0]))


def test_bytes_from_the_traces_own_model_and_mixed_models_refused():
    one = random_trace(3, n_requests=150, models=ONE_MODEL)
    caps = [10**6, 10**7, 10**8, None]
    _same(belady_curve(one, capacities_bytes=caps, block_accesses=7, chunk_requests=7),
          reference_curve(one, capacities_bytes=caps))
    mixed = random_trace(3, n_requests=150, models=("llama-3.1-8b", "qwen3-8b"))
    for chunk in CHUNKS:
        with pytest.raises(InputError, match="block-level"):
            belady_curve(mixed, capacities_bytes=[10**9], chunk_requests=chunk)
    _same(belady_curve(mixed, capacities_blocks=[5, 50, None], chunk_requests=7),
          reference_curve(mixed, capacities_blocks=[5, 50, None]))


@pytest.mark.parametrize("block", [7, 4096, None])
def test_mooncake_in_memory_file_and_v2_parquet(mooncake_trace, mooncake_path, tmp_path, block):
    caps = [0, 1, 100, 1000, 5000, 20000, None]
    ref = reference_curve(mooncake_trace, capacities_blocks=caps)
    _same(belady_curve(mooncake_trace, capacities_blocks=caps, block_accesses=block), ref)
    _same(belady_curve(mooncake_path, capacities_blocks=caps, block_accesses=block,
                       chunk_requests=4096), ref)
    pq_path = tmp_path / "m.parquet"
    save_trace(mooncake_trace, pq_path)
    assert bel.n_accesses_hint(TraceSource.of(pq_path)) == mooncake_trace.n_block_accesses
    _same(belady_curve(pq_path, capacities_blocks=caps, block_accesses=block,
                       chunk_requests=7), ref)
    assert ref.belady_block_hit_ratio.iloc[0] == 0.0 and ref.belady_block_hit_ratio.iloc[3] > 0


def test_mooncake_bytes(mooncake_trace):
    caps = [2**20, 2**28, 2**32, None]
    ref = reference_curve(mooncake_trace, capacities_bytes=caps, model="llama-3.1-8b")
    _same(belady_curve(mooncake_trace, capacities_bytes=caps, model="llama-3.1-8b",
                       block_accesses=4096, chunk_requests=7), ref)


def _python_min(ids: list[int], capacity: int) -> int:
    """MIN with bypass by brute force over the cached set (no heap): hits."""
    n = len(ids)
    nxt = [next((k for k in range(j + 1, n) if ids[k] == ids[j]), n + j) for j in range(n)]
    cached: dict[int, int] = {}
    hits = 0
    for j, o in enumerate(ids):
        if o in cached:
            hits += 1
        elif len(cached) >= capacity:
            far = max(cached, key=cached.get)
            if cached[far] <= nxt[j]:
                continue
            del cached[far]
        cached[o] = nxt[j]
    return hits


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.integers(0, 9), min_size=0, max_size=300), capacity=st.integers(1, 8),
       block=st.sampled_from((1, 3, 64, 1000)))
def test_heap_compaction_keeps_decisions(ids, capacity, block):
    """With no heap slack the heap compacts every ``2 * capacity`` pushes or so; hits are
    unchanged (against a heap-free brute force) and the heap never outgrows its array."""
    arr = np.asarray(ids, dtype=np.int64)
    nxt = next_use(arr, 10)
    st_ = bel._MinState(capacity, 10, slack=0)
    for a in range(0, len(arr), block):
        st_.feed(arr[a:a + block], nxt[a:a + block])
        assert st_.scal[0] <= st_.hk.shape[0] == 2 * capacity
    assert st_.hits == _python_min(ids, capacity)
    assert st_.hits == int(belady_hits(arr, nxt, 10, capacity).sum())


def test_min_block_compacts_on_a_long_stream():
    """A hot set re-hit many times fills the heap with stale entries; it stays fixed-size."""
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 50, 20_000).astype(np.int64)
    nxt = next_use(ids, 50)
    key = np.full(50, -1, dtype=np.int64)
    hk, ho = np.empty(2 * 10 + 4, dtype=np.int64), np.empty(2 * 10 + 4, dtype=np.int64)
    scal = np.zeros(2, dtype=np.int64)
    hits = min_block(ids, nxt, 10, key, hk, ho, scal)
    assert hits == int(belady_hits(ids, nxt, 50, 10).sum())
    assert scal[1] == 10 and int((key >= 0).sum()) == 10


# ------------------------------------------------------------------ spill files and refusals


def test_spill_directory_honours_tmpdir_and_is_removed(mooncake_trace, tmp_path, monkeypatch):
    seen: list[list[str]] = []
    real = bel._spill_next_uses

    def spy(ids, block, path):
        seen.append(sorted(os.listdir(path.parent)))
        assert path.parent.parent == tmp_path
        return real(ids, block, path)

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(bel, "_spill_next_uses", spy)
    belady_curve(mooncake_trace, capacities_blocks=[100])
    assert seen == [["ids.bin"]]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_spill_directory_removed_on_error_and_ctrl_c(mooncake_trace, tmp_path, monkeypatch, exc):
    def boom(*_a):
        raise exc("stop")

    monkeypatch.setattr(bel, "min_block", boom)
    with pytest.raises(exc):
        belady_curve(mooncake_trace, capacities_blocks=[100], spill_dir=tmp_path)
    assert os.listdir(tmp_path) == []


def test_refuses_when_the_disk_is_short(mooncake_trace, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(bel.shutil, "disk_usage", lambda _p: usage(100, 90, 10))
    with pytest.raises(InputError, match="spills about .* block accesses x 8 bytes"):
        belady_curve(mooncake_trace, capacities_blocks=[100], spill_dir=tmp_path)
    assert os.listdir(tmp_path) == []


def test_refuses_when_the_state_does_not_fit(mooncake_trace):
    n_obj = prepare_stream(mooncake_trace).n_objects
    caps = [n_obj - k for k in range(1, 11)]
    need = bel.state_bytes(n_obj, caps, 4096)
    assert need > 10 * 8 * n_obj  # a next use per object and a heap, per capacity
    with guard.limit(need // 2), pytest.raises(guard.ResourceLimitError, match="Belady"):
        belady_curve(mooncake_trace, capacities_blocks=caps, chunk_requests=7,
                     block_accesses=4096)
    with guard.limit(need + 10**7):  # the id map of chunks of 7 requests fits, the state too
        _same(belady_curve(mooncake_trace, capacities_blocks=caps, chunk_requests=7,
                           block_accesses=4096),
              reference_curve(mooncake_trace, capacities_blocks=caps))


def test_sweep_cli_refusal_is_one_line(cli, mooncake_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(bel.shutil, "disk_usage", lambda _p: usage(100, 90, 10))
    res = cli("sweep", "--trace", str(mooncake_path), "--capacities-blocks", "100,inf",
              "--belady")
    assert res.exit_code == 2
    assert "Traceback" not in res.stderr and "--belady" in res.stderr
    assert "TMPDIR" in res.stderr


def test_empty_stream(small_trace):
    empty = small_trace.slice(0, 0)
    for caps in ([0, 5, None],):
        _same(belady_curve(empty, capacities_blocks=caps),
              reference_curve(empty, capacities_blocks=caps))


def test_grid_stage_belady_reads_the_stream(mooncake_trace, tmp_path):
    """The report's grid stage passes the workload's stream (not ``whole()``): same table as
    the whole-stream path, and the trace is never loaded."""
    from simkv.pipeline.stages.grid import belady
    from simkv.pipeline.workload import WorkloadInput

    trace = mooncake_trace.with_model("llama-3.1-8b")
    path = tmp_path / "w.parquet"
    save_trace(trace, path)
    w = WorkloadInput(name="w", model="llama-3.1-8b", source="test",
                      stream=TraceSource.of(path))
    caps = [2**24, 2**28, 2**31]
    got = belady(w, caps)
    assert "_loaded" not in w.__dict__
    ref = reference_curve(trace, capacities_bytes=caps)
    assert list(got["workload"]) == ["w"] * 3
    assert got["capacity_bytes"].tolist() == caps
    assert got["belady_block_hit_ratio"].tolist() == ref["belady_block_hit_ratio"].tolist()


def test_partition_folder_and_its_access_count(mooncake_trace, mooncake_path, tmp_path, cli):
    """A `trace partition` folder streams back in request order: same bound, and the count
    the disk check uses comes from its manifest; `sweep --belady` prints the same ratios."""
    import json

    from simkv.trace.partition import partition_trace

    partition_trace(mooncake_path, 4, tmp_path / "p")
    src = TraceSource.of(tmp_path / "p")
    assert bel.n_accesses_hint(src) == mooncake_trace.n_block_accesses
    caps = [10, 1000, None]
    ref = reference_curve(mooncake_trace, capacities_blocks=caps)
    _same(belady_curve(src, capacities_blocks=caps, chunk_requests=7, block_accesses=4096), ref)
    res = cli("sweep", "--trace", str(tmp_path / "p"), "--capacities-blocks", "10,1000,inf",
              "--ttls", "5m,inf", "--belady", "--json", "--chunk-requests", "7")
    assert res.exit_code == 0, res.stderr
    got = [p["belady_block_hit_ratio"] for p in json.loads(res.stdout)]
    assert got == list(np.repeat(ref["belady_block_hit_ratio"].to_numpy(), 2))
