"""The pieces under chunked pricing: spilled columns, chunking-independent sums, spilled runs.

Oracles: the arrays written (spill), Python's ``math.fsum`` and ``np.bincount`` on the whole
array (sums), and the engine's own per-request records (runs).
"""

from __future__ import annotations

import gc
import math
import shutil
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cache import CacheConfig, simulate
from simkv.economics.context import BillContext
from simkv.economics.requests import BillTrace
from simkv.economics.spill import Spill
from simkv.economics.sums import ExactSum, add_by_unit
from simkv.errors import InputError
from tests.unit.test_bills import _random_trace


def test_spill_reads_back_what_was_appended_and_cleans_up(tmp_path):
    s = Spill(tmp_path)
    a = np.arange(10, dtype=np.int64)
    s.append("x", a[:4])
    s.append("x", a[4:])
    s.append("t", np.linspace(0, 1, 10))
    assert s.rows("x") == 10
    assert np.array_equal(s.read("x", 3, 8), a[3:8])
    assert np.array_equal(s.read("x", 8, 50), a[8:])  # past the end: what there is
    assert s.read("x", 10, 12).size == 0
    assert np.array_equal(s.read("t", 0, 10), np.linspace(0, 1, 10))
    folder = s.folder
    assert folder.parent == tmp_path and (folder / "x").exists()
    s.drop("x")
    assert not (folder / "x").exists()
    del s
    gc.collect()
    assert not folder.exists()  # the finalizer removed the folder
    with pytest.raises(TypeError):
        Spill(tmp_path).append("y", np.zeros(3, dtype=np.int32))


def test_spill_refuses_when_the_disk_is_short(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(100, 90, 1000))
    with pytest.raises(InputError, match="TMPDIR"):
        Spill(tmp_path).check_disk(1_000, 4, "the per-request columns")  # 32,000 bytes > 1,000
    Spill(tmp_path).check_disk(10, 4, "the per-request columns")  # 320 bytes fit


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-1e12, 1e12, allow_nan=False), max_size=300),
       cut=st.integers(1, 50))
def test_exact_sum_is_fsum_for_any_chunking(values, cut):
    e = ExactSum()
    for a in range(0, len(values), cut):
        e.add(np.array(values[a:a + cut]))
    assert e.value == math.fsum(values)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 400), cut=st.integers(1, 60))
def test_unit_sums_are_bincount_for_any_chunking(seed, n, cut):
    rng = np.random.default_rng(seed)
    units = rng.integers(0, 9, n)
    w = rng.random(n) * 10.0 ** rng.integers(-6, 6, n)
    out = np.zeros(9)
    for a in range(0, n, cut):
        add_by_unit(out, units[a:a + cut], w[a:a + cut])
    assert np.array_equal(out, np.bincount(units, weights=w, minlength=9))


@pytest.mark.parametrize("size", [1, 7, None])
@pytest.mark.parametrize("min_tokens", [0, 300])
def test_a_spilled_run_is_the_engines_records(size, min_tokens):
    """A run's spilled outcomes equal ``simulate``'s records on the eligible requests, zeros
    elsewhere, whatever the chunk size; the columns equal the trace's."""
    tr = _random_trace(3, 50, True)
    ctx = BillContext(tr, None, n_boot=0, chunk_requests=size)
    cfg = CacheConfig(ttl_s=300.0)
    run = ctx.run(cfg, min_tokens)
    elig = tr.input_tokens >= max(min_tokens, 1)
    rec = simulate(tr.select(np.flatnonzero(elig)), cfg).records
    want = np.zeros(tr.n_requests, dtype=np.int64)
    want[elig] = rec["reused_tokens"].to_numpy()
    assert np.array_equal(run.whole("hit_tokens"), want)
    want[elig] = rec["prefix_hit_blocks"].to_numpy()
    assert np.array_equal(run.whole("hit_blocks"), want)
    bt = ctx.source
    cols = bt.columns(0, tr.n_requests)
    assert np.array_equal(cols.arrival_s, tr.arrival_s)
    assert np.array_equal(cols.blocks, np.diff(tr.block_offsets))
    assert bt.facts.n_requests == tr.n_requests
    assert bt.facts.max_session_id == int(tr.session_ids.max())


def test_a_dropped_run_deletes_its_spilled_outcomes():
    tr = _random_trace(2, 30, True)
    bt = BillTrace(tr)
    ctx = BillContext(bt, None, n_boot=0)
    run = ctx.run(CacheConfig(ttl_s=60.0))
    names = list(run.columns.values())
    assert all((bt.spill.folder / n).exists() for n in names)
    ctx.forget_runs()
    del run
    gc.collect()
    assert not any((bt.spill.folder / n).exists() for n in names)
