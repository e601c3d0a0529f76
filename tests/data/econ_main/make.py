"""Writes main's (1df2104) compare / recommend outputs that tests/unit/test_bill_sums.py holds
the streamed bills to.  Run from a checkout of the *previous* implementation:

    cd /path/to/main && NUMBA_CACHE_DIR=/tmp/nc .venv/bin/python \
        /path/to/this/make.py /path/to/this/dir

(it imports that checkout's ``simkv`` and ``tests``).  Regenerate only when a figure is meant
to change, and say so in the commit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from simkv.cli.common import _clean
from simkv.economics import compare
from simkv.economics.pricebook import load_pricebooks
from simkv.economics.recommend import recommend
from simkv.trace.stream import TraceSource
from tests.unit.test_bills import SHIPPED_LIKE, _random_trace, book
from tests.unit.test_bills_stream import MODEL, MOONCAKE, PASSES, _tagged

#: (name, seed, n requests, sessions) of the random traces (tests.unit.test_bills._random_trace)
RANDOM = (("r0", 0, 60, True), ("r1", 1, 45, False), ("r2", 2, 80, True))
N_BOOT, SEED = 40, 3


def random_case(seed: int, n: int, sessions: bool):
    """A random trace with tags and repeating content hashes (prefix and chunk reuse)."""
    from dataclasses import replace

    import numpy as np

    tr = _tagged(_random_trace(seed, n, sessions), seed)
    rng = np.random.default_rng(seed)
    return replace(tr, content_hashes=rng.integers(1, 30, tr.n_block_accesses).astype(np.uint64))


def _subscription(books):
    return next(b for b in books if b.kind == "subscription")


def outputs(only=()) -> dict:
    """Every case's output (``only``: those names), computed when asked."""
    books = [book(**s) for s in (*SHIPPED_LIKE, *PASSES)]
    shipped = load_pricebooks(None)
    sub = book(**SHIPPED_LIKE[5])
    cases = {
        "mooncake_shipped": lambda: compare(TraceSource.of(MOONCAKE), MODEL, shipped,
                                            n_boot=N_BOOT, seed=SEED),
        "mooncake_like": lambda: compare(TraceSource.of(MOONCAKE), MODEL, books, n_boot=N_BOOT,
                                         seed=SEED),
        "mooncake_recommend": lambda: recommend(TraceSource.of(MOONCAKE), MODEL, sub,
                                                growth=(2, 3)),
        "mooncake_recommend_slo": lambda: [
            recommend(TraceSource.of(MOONCAKE), MODEL, b, growth=(), ttft_p90_slo_s=slo)
            for b, slo in SLO_CASES(sub, _subscription(shipped))],
    }
    for name, seed, n, sessions in RANDOM:
        cases[name] = (lambda seed=seed, n=n, sessions=sessions: compare(
            random_case(seed, n, sessions), None, [book(**s) for s in (*SHIPPED_LIKE, *PASSES)],
            reuse_modes=("prefix", "chunk"), n_boot=N_BOOT, seed=seed))
    return {k: f() for k, f in cases.items() if not only or k in only}


def SLO_CASES(sub, shipped_sub):  # noqa: N802 - a table
    """(subscription book, TTFT p90 objective) pairs of ``recommend --ttft-slo-p90-s``."""
    return ((sub, 0.3), (sub, 2.0), (shipped_sub, 2.0))


if __name__ == "__main__":
    d = Path(sys.argv[1])
    only = sys.argv[2:]  # names to (re)write; default all
    for k, v in outputs(only).items():
        (d / f"{k}.json").write_text(json.dumps(_clean(v), indent=1) + "\n")
