"""Bills on a streamed trace: ``compare`` and ``recommend`` hold per-request columns and read
the blocks chunk by chunk, and give the same rows for chunks of 1, 7, 4096 requests and the
whole trace, from a file or from memory.  Growth copies streamed (``GrownSource``) equal the
in-memory :func:`~simkv.economics.growth.grow` (the oracle: it sorts all copies at once).

The figures before streaming were checked byte for byte on the CLI (``compare --json``,
``recommend --json`` on the shipped Mooncake trace and a generated 6-hour support-assistant
trace): the report of branch r3stream15d."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.economics import compare
from simkv.economics.growth import GrownSource, grow, spacing_within
from simkv.economics.recommend import recommend
from simkv.economics.requests import BillTrace
from simkv.trace.model import NO_ID, concat_traces
from simkv.trace.stream import TraceSource
from tests.conftest import random_trace
from tests.unit.test_bills import SHIPPED_LIKE, _random_trace, book

MOONCAKE = Path(__file__).resolve().parents[1] / "data" / "mooncake_synthetic.jsonl"
MODEL = "llama-3.1-8b"
SIZES = (1, 7, 4096, None)  # None: the whole trace as one chunk


def _books(extra: tuple[dict, ...] = ()) -> list:
    return [book(**s) for s in (*SHIPPED_LIKE, *extra)]


#: books whose bills read blocks in their own passes: breakpoints (tags), prefix units
#: (DeepSeek), storage lifetimes (Gemini, shared only), a fleet sized per hour
PASSES = (
    dict(kind="anthropic", name="a-bp", input_usd_per_mtok=3, min_cacheable_tokens=256,
         breakpoints="prompt_end",
         ttl_options=[{"label": "5m", "ttl": 300, "write_multiplier": 1.25}]),
    dict(kind="gemini", name="g-all", input_usd_per_mtok=1.25, storage_usd_per_mtok_hour=4.5,
         min_cacheable_tokens=256, cache_scope="all"),
    dict(kind="self_hosted", name="h-ph", usd_per_gpu_hour=2.95, prefill_tokens_per_s=20000,
         sizing="per_hour", ttft_slo_p90_s=2.0),
)


def _tagged(tr, seed: int):
    rng = np.random.default_rng(seed)
    lengths = np.diff(tr.block_offsets)
    return replace(tr, block_tags=np.concatenate(
        [np.sort(rng.integers(0, 3, int(k))).astype(np.int8) for k in lengths]))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 50), sessions=st.booleans(),
       tags=st.booleans(), content=st.booleans())
def test_compare_rows_do_not_depend_on_the_chunk_size(seed, n, sessions, tags, content):
    """Prefix and (with content hashes repeating across requests) chunk reuse."""
    tr = _random_trace(seed, n, sessions)
    tr = _tagged(tr, seed) if tags else tr
    modes = ("prefix",)
    if content:
        rng = np.random.default_rng(seed)
        tr = replace(tr, content_hashes=rng.integers(1, 30, tr.n_block_accesses).astype(np.uint64))
        modes = ("prefix", "chunk")
    books = _books(PASSES)
    want = compare(tr, None, books, reuse_modes=modes, n_boot=10, seed=seed)
    assert len(want) >= len(books)
    for size in SIZES[:-1]:
        assert compare(tr, None, books, reuse_modes=modes, n_boot=10, seed=seed,
                       chunk_requests=size) == want


@pytest.fixture(scope="module")
def mooncake_rows():
    books = _books(PASSES)
    return books, compare(TraceSource.of(MOONCAKE), MODEL, books, n_boot=5)


@pytest.mark.parametrize("size", [pytest.param(1, marks=pytest.mark.slow), 7, 4096])
def test_compare_on_mooncake_streamed_equals_in_memory(mooncake_rows, size):
    """The file read in chunks of ``size`` bills as the whole trace in memory does."""
    books, want = mooncake_rows
    whole = TraceSource.of(MOONCAKE).load()
    assert compare(whole, MODEL, books, n_boot=5) == want
    if size == 1:  # one request per chunk: the bills that read blocks, not the fleet's SimPy
        books = [b for b in books if b.kind in ("anthropic", "deepseek", "gemini")]
        want = compare(whole, MODEL, books, n_boot=5)
    got = compare(TraceSource.of(MOONCAKE), MODEL, books, n_boot=5, chunk_requests=size)
    assert got == want


def test_recommend_on_mooncake_streamed_equals_in_memory():
    sub = book(**SHIPPED_LIKE[5])
    whole = TraceSource.of(MOONCAKE).load()
    want = recommend(whole, MODEL, sub, growth=(2, 3))
    assert [g["factor"] for g in want["growth"]] == [2, 3]
    for size in (7, 4096):
        got = recommend(TraceSource.of(MOONCAKE), MODEL, sub, growth=(2, 3),
                        chunk_requests=size)
        assert got == want


def _streamed_growth(tr, g: int, spacing_s: float, size: int | None):
    bt = BillTrace(tr, chunk_requests=size)
    chunks = list(GrownSource(base=bt, factor=g, spacing_s=spacing_s).chunks())
    assert sum(c.n_requests for c in chunks) == g * tr.n_requests
    return concat_traces(chunks)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), g=st.integers(1, 5), sessions=st.booleans(),
       spacing=st.sampled_from([None, 0.0, 0.5, 40.0]), tied=st.booleans())
def test_streamed_growth_equals_grow(seed, g, sessions, spacing, tied):
    """Every request, block, hash and session id of ``grow``'s trace, in its order, whatever
    the chunk size; ``tied`` rounds arrivals to whole minutes so copies tie across chunks."""
    tr = random_trace(seed, n_requests=60, duration_s=900.0)
    if tied:
        tr = replace(tr, arrival_s=np.floor(tr.arrival_s / 60.0) * 60.0)
    if sessions:
        rng = np.random.default_rng(seed)
        s = rng.integers(0, 9, tr.n_requests)
        tr = replace(tr, session_ids=np.where(s == 0, NO_ID, s).astype(tr.session_ids.dtype))
    s_ = spacing_within(tr, float(tr.arrival_s[tr.n_requests // 2])) if spacing is None \
        else spacing
    want = grow(tr, g, spacing_s=s_)
    for size in SIZES:
        got = _streamed_growth(tr, g, s_, size)
        assert got.equals(want), (size, g)


def test_streamed_growth_on_mooncake():
    whole = TraceSource.of(MOONCAKE).load()
    s_ = spacing_within(whole, float(whole.arrival_s[100]))
    want = grow(whole, 3, spacing_s=s_)
    for size in (1, 7, 4096):
        assert _streamed_growth(whole, 3, s_, size).equals(want)
