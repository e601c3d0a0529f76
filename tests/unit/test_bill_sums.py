"""Bills priced into sums (per component, per bootstrap unit) give main's figures.

Expected values come from two independent sources:

- main's outputs (1df2104, bills holding per-request arrays and a resamples x units count
  matrix), written by ``tests/data/econ_main/make.py`` from that checkout: the shipped books
  and shipped-like books on the Mooncake trace, ``recommend`` with growth, and random traces
  with tags and content hashes (prefix and chunk reuse).  Integers, strings and the order of
  every row and key must be equal; floats within 1e-12 relative: a component's total is now
  the correctly rounded sum of its per-request dollars (``math.fsum``'s, kept chunk by chunk)
  where main took numpy's pairwise sum (a few ulps apart), and main multiplied the bootstrap's
  count matrix by the per-unit sums with BLAS, whose summation order differs from the
  pairwise row sums now;
- a reference twin of main's bootstrap (:func:`matrix_bootstrap`, copied from main) fed the
  per-request arrays a bill keeps with ``keep_requests=True``.
Every case runs for chunks of 1, 7, 4096 requests and the whole trace, and every chunking
gives the same output to the bit (:func:`test_every_chunking_bills_to_the_bit`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.cli.common import _clean
from simkv.economics import compare
from simkv.economics.bill import CI_LEVEL, Bill
from simkv.economics.context import BillContext
from simkv.economics.pricebook import load_pricebooks
from simkv.economics.recommend import recommend
from simkv.economics.window import parse_warmup
from simkv.trace.stream import TraceSource
from tests.data.econ_main.make import N_BOOT, RANDOM, SEED, random_case
from tests.unit.test_bills import SHIPPED_LIKE, _random_trace, book
from tests.unit.test_bills_stream import MODEL, MOONCAKE, PASSES

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "econ_main"
SIZES = (1, 7, 4096, None)
REL = 1e-12


def _golden(name: str):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def _same(got, want, where: str = "", ci: bool = False) -> None:
    """Equal, floats within ``REL`` relative (1e-9 absolute near zero, e.g. a saving of $0)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for k in want:
            _same(got[k], want[k], f"{where}.{k}", ci or k == "ci95")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]", ci)
    elif isinstance(want, float):
        assert isinstance(got, float) and math.isclose(got, want, rel_tol=REL, abs_tol=1e-9), (
            where, got, want)
    else:
        assert got == want and type(got) is type(want), (where, got, want)


def _json(obj):
    return json.loads(json.dumps(_clean(obj)))


# ---------------------------------------------------------------- against main's outputs
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("case", [c[0] for c in RANDOM])  # ~1 s each
def test_random_traces_bill_as_main_did(case, size):
    name, seed, n, sessions = next(c for c in RANDOM if c[0] == case)
    got = compare(random_case(seed, n, sessions), None,
                  [book(**s) for s in (*SHIPPED_LIKE, *PASSES)], reuse_modes=("prefix", "chunk"),
                  n_boot=N_BOOT, seed=seed, chunk_requests=size)
    _same(_json(got), _golden(name))


@pytest.mark.parametrize("size", [pytest.param(1, marks=pytest.mark.slow),
                                  pytest.param(7, marks=pytest.mark.slow), 4096, None])
def test_mooncake_shipped_books_bill_as_main_did(size):
    books = load_pricebooks(None)
    want = _golden("mooncake_shipped")
    if size == 1:  # one request per chunk: not the fleet's SimPy (its own streaming tests)
        keep = [i for i, r in enumerate(want) if not r["provider"].startswith("self-hosted")]
        want = [want[i] for i in keep]
        books = [b for b in books if b.kind != "self_hosted"]
    got = compare(TraceSource.of(MOONCAKE), MODEL, books, n_boot=N_BOOT, seed=SEED,
                  chunk_requests=size)
    _same(_json(got), want)


@pytest.mark.parametrize("size", [pytest.param(7, marks=pytest.mark.slow), 4096])
def test_mooncake_shipped_like_books_bill_as_main_did(size):
    books = [book(**s) for s in (*SHIPPED_LIKE, *PASSES)]
    got = compare(TraceSource.of(MOONCAKE), MODEL, books, n_boot=N_BOOT, seed=SEED,
                  chunk_requests=size)
    _same(_json(got), _golden("mooncake_like"))


@pytest.mark.parametrize("size", [pytest.param(7, marks=pytest.mark.slow), None])
def test_mooncake_recommend_as_main_did(size):
    got = recommend(TraceSource.of(MOONCAKE), MODEL, book(**SHIPPED_LIKE[5]), growth=(2, 3),
                    chunk_requests=size)
    _same(_json(got), _golden("mooncake_recommend"))


# ---------------------------------------------------------------- the reference twin
def matrix_bootstrap(bill: Bill, rng: np.random.Generator, n_boot: int) -> dict:
    """main's ``Bill.bootstrap``: a resamples x units count matrix times per-unit sums."""
    d = bill.detail
    if n_boot <= 0 or len(d.units) == 0:
        return {}
    _, inverse = np.unique(d.units, return_inverse=True)
    n_units = int(inverse.max()) + 1
    per_req_total = np.zeros(len(d.units))
    for arr in d.request_usd.values():
        per_req_total = per_req_total + arr

    def by_unit(a):
        return np.bincount(inverse, weights=np.asarray(a, dtype=np.float64), minlength=n_units)

    u_total, u_base = by_unit(per_req_total), by_unit(d.baseline_usd)
    u_hit, u_in = by_unit(d.hit_tokens), by_unit(d.input_tokens)
    counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot)
    f = bill.window.month_factor
    fixed = (sum(bill.window_usd.values()) * f + sum(bill.monthly_usd.values()))
    total = counts @ u_total * f + fixed
    base = counts @ u_base * f + bill.baseline_monthly_usd
    tin = counts @ u_in
    hit = np.divide(counts @ u_hit, tin, out=np.zeros(n_boot), where=tin > 0)
    lo, hi = 100 * (1 - CI_LEVEL) / 2, 100 * (1 + CI_LEVEL) / 2

    def ci(a):
        return [float(np.percentile(a, lo)), float(np.percentile(a, hi))]

    return {"hit_rate": ci(hit), "total_usd": ci(total), "savings_usd": ci(base - total)}


def _bills(tr, size, keep: bool):
    ctx = BillContext(tr, None, warmup=parse_warmup("auto"), n_boot=0, chunk_requests=size,
                      keep_requests=keep)
    return [b for spec in SHIPPED_LIKE for b in book(**spec).bills(ctx) if isinstance(b, Bill)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 70), sessions=st.booleans(),
       n_boot=st.sampled_from([1, 2, 17, 60]), size=st.sampled_from(SIZES))
def test_bootstrap_equals_the_matrix_twin(seed, n, sessions, n_boot, size):
    tr = _random_trace(seed, n, sessions)
    for bill in _bills(tr, size, keep=True):
        got = bill.bootstrap(np.random.default_rng(seed), n_boot)
        want = matrix_bootstrap(bill, np.random.default_rng(seed), n_boot)
        _same({"ci95": got}, {"ci95": want})


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 70), sessions=st.booleans(),
       size=st.sampled_from(SIZES))
def test_sums_only_bills_summarize_as_bills_with_requests(seed, n, sessions, size):
    tr = _random_trace(seed, n, sessions)
    kept, summed = _bills(tr, size, keep=True), _bills(tr, size, keep=False)
    assert len(kept) == len(summed)
    for a, b in zip(kept, summed, strict=True):
        assert b.detail is None and a.detail is not None
        assert (a.summary(np.random.default_rng(seed), 25)
                == b.summary(np.random.default_rng(seed), 25))
        # the sums are the per-request arrays' sums (hand-checkable definition)
        assert b.billed_requests == len(a.input_tokens)
        assert b.hit_sum_tokens == int(a.hit_tokens.sum())
        # each total is the correctly rounded sum of the bill's per-request dollars
        assert b.request_sum_usd == {k: math.fsum(v.tolist()) for k, v in a.request_usd.items()}
        assert b.baseline_sum_usd == math.fsum(a.baseline_usd.tolist())
        # and each unit's sum is np.bincount's over the units, in request order
        inverse = np.unique(a.units, return_inverse=True)[1].reshape(-1)
        assert np.array_equal(b.unit_sums.baseline_usd,
                              np.bincount(inverse, weights=a.baseline_usd))


@pytest.mark.parametrize("case", [c[0] for c in RANDOM])
def test_every_chunking_bills_to_the_bit(case):
    """Sums carried over chunks do not depend on where the chunks end: chunks of 1, 7 and
    4096 requests give the whole trace's output exactly (intervals included)."""
    name, seed, n, sessions = next(c for c in RANDOM if c[0] == case)
    books = [book(**s) for s in (*SHIPPED_LIKE, *PASSES)]
    outs = [compare(random_case(seed, n, sessions), None, books, reuse_modes=("prefix", "chunk"),
                    n_boot=N_BOOT, seed=seed, chunk_requests=size) for size in SIZES]
    for got in outs[:-1]:
        assert _json(got) == _json(outs[-1])


def test_bootstrap_rows_are_the_batched_multinomial_rows():
    """Drawing one row at a time consumes the generator as ``size=n_boot`` does: the next
    draw after a bootstrap is the same either way (so rows are independent of batching)."""
    tr = _random_trace(5, 50, True)
    bill = _bills(tr, None, keep=True)[0]
    n_units = bill.unit_sums.n_units
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    bill.bootstrap(a, 30)
    b.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=30)
    assert a.integers(0, 2**62) == b.integers(0, 2**62)


def test_a_sums_only_bill_names_what_it_dropped():
    bill = _bills(_random_trace(1, 10, True), None, keep=False)[0]
    with pytest.raises(ValueError, match="keep_requests=True"):
        _ = bill.hit_tokens


@pytest.mark.parametrize("size", [pytest.param(7, marks=pytest.mark.slow), 4096, None])
def test_mooncake_recommend_ttft_slo_streamed_as_main_did(size):
    """``--ttft-slo-p90-s`` now streams the trace through the latency model (no records
    kept); main replayed the whole trace in memory and took ``numpy.quantile`` of the
    records.  Same replicas, same p90 to the bit."""
    from tests.data.econ_main.make import SLO_CASES, _subscription

    cases = SLO_CASES(book(**SHIPPED_LIKE[5]), _subscription(load_pricebooks(None)))
    got = [recommend(TraceSource.of(MOONCAKE), MODEL, b, growth=(), ttft_p90_slo_s=slo,
                     chunk_requests=size) for b, slo in cases]
    _same(_json(got), _golden("mooncake_recommend_slo"))


def test_compare_holds_two_books_runs_and_reruns_a_dropped_one():
    """``book_done`` keeps the runs the last book asked for; a run asked again after it was
    dropped is re-run with the same result (rows equal to billing each book alone)."""
    from simkv.cache import CacheConfig

    tr = _random_trace(4, 60, True)
    ctx = BillContext(tr, None, n_boot=0)
    a, b = CacheConfig(ttl_s=300.0), CacheConfig(ttl_s=600.0)
    first = ctx.run(a)
    ctx.book_done()
    ctx.run(b)
    ctx.book_done()  # a was not asked by the last book: dropped
    assert set(ctx._runs) == {(b, 0)}
    again = ctx.run(a)
    assert again is not first and np.array_equal(again.whole("hit_tokens"),
                                                 first.whole("hit_tokens"))
    # gemini's implicit cache and openai's retention share a run; a book between them
    specs = [dict(kind="gemini", name="g", input_usd_per_mtok=1.25, storage_usd_per_mtok_hour=4.5,
                  min_cacheable_tokens=256, implicit_idle=600),
             SHIPPED_LIKE[0], SHIPPED_LIKE[2]]
    books = [book(**s) for s in specs]
    alone = [r for bk in books for r in compare(tr, None, [bk], n_boot=10, seed=2)]
    assert compare(tr, None, books, n_boot=10, seed=2) == alone
