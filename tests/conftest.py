"""Shared fixtures: the real Mooncake trace, small random traces, and an in-process CLI runner."""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from simkv.trace.model import Trace

DATA = Path(__file__).parent / "data"
MOONCAKE = DATA / "mooncake_synthetic.jsonl"


@pytest.fixture(scope="session")
def mooncake_path() -> Path:
    return MOONCAKE


@pytest.fixture(scope="session")
def mooncake_trace() -> Trace:
    from simkv.trace import load_trace

    return load_trace(MOONCAKE)


def random_trace(seed: int, n_requests: int = 200, block_tokens: int = 16, n_prefixes: int = 8,
                 max_blocks: int = 12, models: tuple[str, ...] = (), duration_s: float = 600.0) -> Trace:
    """A small trace with shared prefixes: each request extends one of a few prefix trees."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    arrival = np.sort(rng.uniform(0, duration_s, n_requests))
    chains, inp = [], []
    next_id = 1
    roots = [[] for _ in range(n_prefixes)]
    for p in range(n_prefixes):
        k = int(rng.integers(1, max_blocks // 2 + 1))
        roots[p] = list(range(next_id, next_id + k))
        next_id += k
    for _ in range(n_requests):
        root = roots[int(rng.zipf(1.5) - 1) % n_prefixes]
        extra = int(rng.integers(0, max_blocks // 2 + 1))
        chain = root + list(range(next_id, next_id + extra))
        next_id += extra
        chain = chain or [next_id]
        next_id += 1 if not chain else 0
        tokens = (len(chain) - 1) * block_tokens + int(rng.integers(1, block_tokens + 1))
        chains.append(chain)
        inp.append(tokens)
    offsets = np.zeros(n_requests + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chains], out=offsets[1:])
    model_index = None
    if models:
        model_index = rng.integers(0, len(models), n_requests)
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=arrival, input_tokens=inp,
        output_tokens=rng.integers(1, 64, n_requests), block_offsets=offsets,
        block_hashes=np.concatenate([np.asarray(c, dtype=np.uint64) for c in chains]),
        session_ids=rng.integers(0, 20, n_requests), model_index=model_index, models=models,
    )


@pytest.fixture
def small_trace() -> Trace:
    return random_trace(7)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    """Run ``simkv ARGS`` in-process; returns exit code, stdout and stderr."""
    from simkv.cli.main import build_app, run

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = run(build_app(), list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


def pytest_configure(config):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
