"""The report's streamed stages against their whole-trace twins, for chunk sizes 1, 7, 4096 and
the whole trace: one model's view of a stream (``simkv.trace.by_model``) against
``trace.select(rows).with_model(name)``, the streamed working set against the dense whole-trace
assignment, and the explorer's tables against the former in-memory code (``grow`` on the whole
trace, every table computed on in-memory traces), copied here as the reference."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.cache.engine import block_bytes_per_access
from simkv.cache.stream import dense_block_ids
from simkv.cache.working_set import working_set_bytes
from simkv.economics.growth import grow
from simkv.report.explorer import tables as xt
from simkv.report.explorer.money import TierPrice, tokens_per_month
from simkv.sizing import lru_grid
from simkv.trace.by_model import ModelSource, model_request_counts, split_models
from simkv.trace.formats import save_trace
from simkv.trace.model import NO_MODEL, Trace, concat_traces
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace

CHUNKS = (1, 7, 4096, None)
MODELS = ("llama-3.1-8b", "deepseek-v3", "qwen3-32b")
MOONCAKE = Path(__file__).resolve().parents[1] / "data" / "mooncake_synthetic.jsonl"


def _decorated(tr: Trace, seed: int) -> Trace:
    """Tags, content hashes, tenants, a lifecycle-style meta entry and some unknown models."""
    rng = np.random.default_rng(seed)
    n = tr.n_requests
    model_index = rng.integers(-1, len(MODELS), n) if n else np.zeros(0)
    return Trace.from_arrays(
        block_tokens=tr.block_tokens, arrival_s=tr.arrival_s, input_tokens=tr.input_tokens,
        output_tokens=tr.output_tokens, block_offsets=tr.block_offsets,
        block_hashes=tr.block_hashes, session_ids=tr.session_ids,
        tenant_ids=rng.integers(-1, 4, n), model_index=model_index, models=MODELS,
        block_tags=rng.integers(0, 6, tr.n_block_accesses),
        content_hashes=(tr.block_hashes % np.uint64(23)) + np.uint64(1000),
        meta={"events": [{"t_s": 1.0, "kind": "template_change"}], "source": "test"})


def _whole_split(tr: Trace, code: int, name: str) -> Trace:
    """The former in-memory split (bills.per_model / explorer._pairs on main)."""
    return tr.select(np.flatnonzero(tr.model_index == code)).with_model(name)


def _view(tr: Trace | TraceSource, code: int, size: int | None) -> Trace | None:
    src = ModelSource(base=TraceSource.of(tr), code=code, model=MODELS[code])
    chunks = list(src.chunks(size))
    assert all(c.n_requests >= 1 and (size is None or c.n_requests <= size) for c in chunks)
    return concat_traces(chunks) if chunks else None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(0, 80))
def test_model_view_equals_whole_select(seed, n):
    tr = _decorated(random_trace(seed, n_requests=max(n, 1)), seed)
    if n == 0:
        tr = tr.head(0)
    for code, name in enumerate(MODELS):
        want = _whole_split(tr, code, name)
        for size in CHUNKS:
            got = _view(tr, code, size)
            if want.n_requests == 0:
                assert got is None
                continue
            assert got.equals(want), (code, size)
            assert got.meta == want.meta
    counts = model_request_counts(TraceSource.of(tr), len(MODELS), 7)
    assert counts.tolist() == [int(np.sum(tr.model_index == k)) for k in range(len(MODELS))]
    assert int(np.sum(tr.model_index == NO_MODEL)) == tr.n_requests - int(counts.sum())


def test_split_models_keeps_models_with_two_requests():
    """Models with 0, 1, 2 and 5 requests: the 2 and 5 are kept, in the trace's model order."""
    tr = random_trace(3, n_requests=8)
    models = ("m0", "m1", "m2", "m3")
    tr = replace(tr, models=models,
                 model_index=np.array([3, 2, 3, 1, 3, 3, 2, 3], dtype=np.int16))
    split = split_models(TraceSource.of(tr), models)
    assert [(m, s.n_requests_hint()) for m, s in split] == [("m2", 2), ("m3", 5)]
    assert split[1][1].load().equals(_whole_split(tr, 3, "m3"))


@pytest.fixture(scope="module")
def mooncake_mix(tmp_path_factory) -> Path:
    """The Mooncake trace with a seeded model per request, saved as simkv Parquet (so the view
    is read through the chunk reader, whose dense block ids a subset must not keep)."""
    whole = TraceSource.of(MOONCAKE).load()
    rng = np.random.default_rng(15)
    tr = replace(whole, models=MODELS,
                 model_index=rng.integers(0, len(MODELS), whole.n_requests).astype(np.int16))
    path = tmp_path_factory.mktemp("mix") / "mix.parquet"
    save_trace(tr, path)
    return path


def test_model_view_on_mooncake_file(mooncake_mix):
    whole = TraceSource.of(mooncake_mix).load()
    src = TraceSource.of(mooncake_mix)
    for code, name in enumerate(MODELS):
        want = _whole_split(whole, code, name)
        for size in CHUNKS:
            assert _view(src, code, size).equals(want), (code, size)
        view = ModelSource(base=src, code=code, model=name)
        want_grid = lru_grid(want, capacities_blocks=[0, 50, 400, None], ttls_s=[None, 300.0])
        for size in (1, 4096):  # a consumer that uses the reader's ids when a chunk has them
            got_grid = lru_grid(view, capacities_blocks=[0, 50, 400, None], ttls_s=[None, 300.0],
                                chunk_requests=size)
            pd.testing.assert_frame_equal(got_grid, want_grid, check_exact=True)
            assert working_set_bytes(view, size) == _dense_working_set(want)


def _dense_working_set(tr: Trace) -> int:
    """The former whole-trace working set (``simkv.report.explorer.tables`` on main)."""
    ids, n_obj = dense_block_ids(tr)
    weight = np.zeros(n_obj, dtype=np.int64)
    weight[ids] = block_bytes_per_access(tr)
    return int(weight.sum())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_streamed_working_set_equals_dense(seed):
    """A model mix: each block weighs its last access's model, as the dense assignment."""
    tr = random_trace(seed, n_requests=120, models=MODELS)
    for size in CHUNKS:
        assert working_set_bytes(TraceSource.of(tr), size) == _dense_working_set(tr)


def _former_explorer_tables(pairs, tiers, *, quick, days_per_month, slo_p90_s):
    """main's ``explorer_tables``: whole traces, ``grow`` in memory."""
    ttls = list(xt.TTLS_QUICK_S if quick else xt.TTLS_S)
    grids, vols, ttfts = [], [], []
    for name, model, trace in pairs:
        ws = _dense_working_set(trace)
        caps = xt.capacities(ws, tiers, xt.N_CAPS_QUICK if quick else xt.N_CAPS)
        for g in xt.TRAFFIC:
            tr = grow(trace, g)
            frame = lru_grid(tr, capacities_bytes=caps + [None], ttls_s=ttls)
            grids.append(pd.DataFrame({
                "workload": name, "model": model, "traffic": g,
                "capacity_bytes": frame["capacity_bytes"].astype("float64"),
                "ttl_s": frame["ttl_s"].astype("float64"),
                "prefix_token_hit_ratio": frame["prefix_token_hit_ratio"].astype("float64")}))
            a = tr.arrival_s
            window = float(a[-1] - a[0]) if len(a) > 1 else 0.0
            tokens = int(tr.input_tokens.sum())
            vols.append({"workload": name, "model": model, "traffic": g, "input_tokens": tokens,
                         "window_s": window,
                         "input_tokens_per_month": tokens_per_month(tokens, window, days_per_month),
                         "working_set_bytes": _dense_working_set(tr),
                         "block_tokens": int(tr.block_tokens),
                         "block_bytes": int(xt.get_model(model).block_bytes(tr.block_tokens))})
            ttfts += xt._ttft_rows(name, model, g, TraceSource.of(tr), ws, tiers, slo_p90_s)
    return pd.concat(grids, ignore_index=True), pd.DataFrame(vols), pd.DataFrame(ttfts)


def test_explorer_tables_stream_equals_former_in_memory(mooncake_mix):
    """Two models of the Mooncake mix, each streamed from the file (and its 2x and 5x copies
    streamed by GrownSource), against the in-memory tables of the whole-trace split."""
    whole = TraceSource.of(mooncake_mix).load()
    src = TraceSource.of(mooncake_mix)
    tiers = [TierPrice("free", 0.0, 0.0), TierPrice("mid", 2e9, 50.0)]
    codes = (0, 2)
    want = _former_explorer_tables(
        [("mix", MODELS[k], _whole_split(whole, k, MODELS[k])) for k in codes], tiers,
        quick=True, days_per_month=30.0, slo_p90_s=2.0)
    got = xt.explorer_tables(
        [("mix", MODELS[k], ModelSource(base=src, code=k, model=MODELS[k])) for k in codes],
        tiers, quick=True, days_per_month=30.0, slo_p90_s=2.0)
    for a, b in zip((got.grid, got.volume, got.ttft), want, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (got.volume["traffic"].tolist() == [1, 2, 5, 1, 2, 5]
            and got.volume["input_tokens"].iloc[1] == 2 * got.volume["input_tokens"].iloc[0])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 100_000), g=st.sampled_from([1, 2, 5]))
def test_grown_volume_equals_grow(seed, g):
    """The volume pass over a streamed growth copy: the whole ``grow`` trace's totals."""
    tr = random_trace(seed, n_requests=50, models=("llama-3.1-8b",))
    want = grow(tr, g)
    ((_, src),) = xt.grown_sources(TraceSource.of(tr), (g,))
    assert concat_traces(list(src.chunks())).equals(want)
    v = xt._volume(src)
    assert v.input_tokens == int(want.input_tokens.sum())
    assert v.window_s == float(want.arrival_s[-1] - want.arrival_s[0])
    assert v.working_set_bytes == _dense_working_set(want)
    assert v.block_tokens == want.block_tokens


def test_the_stages_split_through_one_function(mooncake_mix):
    """bills.per_model (recommend and explorer call it): a mix gives each model's stream,
    equal to the former whole-trace split; a one-model trace is the workload's own stream."""
    from simkv.pipeline.stages.bills import per_model
    from simkv.pipeline.workload import WorkloadInput

    whole = TraceSource.of(mooncake_mix).load()
    w = WorkloadInput(name="mix", model="ignored", source="test",
                      stream=TraceSource.of(mooncake_mix))
    got = per_model(w)
    assert [m for m, _ in got] == list(MODELS)
    for k, (m, src) in enumerate(got):
        assert src.n_requests_hint() == int(np.sum(whole.model_index == k))
        assert src.load().equals(_whole_split(whole, k, m))
    one = WorkloadInput(name="one", model="llama-3.1-8b", source="test",
                        stream=TraceSource.of(MOONCAKE))
    assert per_model(one) == [("llama-3.1-8b", one.chunks)]
