"""The bills' TTL storage windows (economics/context.py) equal the cache engine's own records.

``BillContext.stored_token_seconds`` computes entry lifetimes with vectorised interval logic;
the engine (``simkv.cache.simulate``, the compiled kernel) keeps a real TTL cache.  They must
agree on how many entries are alive at every moment: probing the lifetimes over a tiny window
``[t_r, t_r + eps]`` just after request ``r`` counts the entries alive then, which for an
unlimited TTL cache is, from the engine's records, every block written so far (``blocks -
hit_blocks``) minus every entry expired so far (``expirations``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simkv.cache import simulate
from simkv.economics.context import BillContext
from simkv.economics.window import Window
from tests.conftest import random_trace

MODEL = "llama-3.1-8b"
EPS_S = 1e-6


def whole_block_trace(seed: int):
    """Prompts of whole blocks, so every entry weighs ``block_tokens`` tokens."""
    trace = random_trace(seed, n_requests=150).with_model(MODEL)
    n = np.diff(trace.block_offsets) * trace.block_tokens
    return replace(trace, input_tokens=n.astype(np.int64))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ttl_s, mode", [(20.0, "refresh_on_hit"), (60.0, "refresh_on_hit"),
                                         (20.0, "from_write"), (90.0, "from_write")])
def test_ttl_windows_match_engine_occupancy(seed, ttl_s, mode):
    trace = whole_block_trace(seed)
    arrival = trace.arrival_s
    assert np.all(np.diff(arrival) > 10 * EPS_S)  # probes never straddle two requests
    ctx = BillContext(trace, MODEL, n_boot=0)
    run = ctx.run(ctx.cache_config(ttl_s=ttl_s, ttl_mode=mode))
    assert run.sub_trace.n_requests == trace.n_requests  # every request is eligible
    eng = simulate(trace, ctx.cache_config(ttl_s=ttl_s, ttl_mode=mode)).records
    written = np.cumsum(eng.blocks - eng.hit_blocks)
    expired = np.cumsum(eng.expirations)
    engine_alive = (written - expired).to_numpy()
    assert engine_alive.max() > 0 and expired.iloc[-1] > 0  # the TTL really acts
    probed = np.empty(trace.n_requests, dtype=np.int64)
    for r, t in enumerate(arrival):
        # a distinct warm-up per probe (the lifetimes are memoized by warm-up)
        warm = 1.0 + r
        w = Window(start_s=float(t) - warm, end_s=float(t) + EPS_S, warmup_s=warm,
                   month_factor=1.0, rule="probe")
        token_s = ctx.stored_token_seconds(run, w)
        probed[r] = round(token_s / (EPS_S * trace.block_tokens))
    assert np.array_equal(probed, engine_alive)


def test_unbounded_lifetime_without_ttl_runs_to_the_window_end():
    """No TTL: each distinct block lives from its first write to the window's end."""
    trace = whole_block_trace(3)
    ctx = BillContext(trace, MODEL, n_boot=0)
    run = ctx.run(ctx.cache_config())
    end = float(trace.arrival_s[-1])
    w = Window(start_s=float(trace.arrival_s[0]), end_s=end, warmup_s=0.0, month_factor=1.0,
               rule="all")
    ids = trace.block_hashes
    first_seen = {}
    times = np.repeat(trace.arrival_s, np.diff(trace.block_offsets))
    for h, t in zip(ids.tolist(), times.tolist(), strict=True):
        first_seen.setdefault(h, t)
    expected = sum((end - t) * trace.block_tokens for t in first_seen.values())
    assert ctx.stored_token_seconds(run, w) == pytest.approx(expected, rel=1e-12)
