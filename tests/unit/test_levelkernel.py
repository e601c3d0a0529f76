"""The compiled storage-level walk (``simkv.sizing.levelkernel``) equals the Python reference.

``simulate_levels(..., engine="reference")`` is the per-request Python loop (``levelstep``
over ``levelstate``'s dicts), the slow, obviously-correct twin; the compiled engine (the
default) must give the same records, timeline, bytes by model, components, events and summary,
compared exactly, for random traces and hierarchies (both placements, promotion and demotion on
and off, both admissions, per-model quotas, TTLs, partial chunks not stored, coarser and finer
levels, every lifecycle event kind, template changes of one component or the whole prompt) and
chunk sizes 1, 7, 4096 and the whole trace; and on the shipped Mooncake trace.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.errors import InputError
from simkv.models import get_model
from simkv.sizing.hierarchy import simulate_levels
from simkv.sizing.levels import Hierarchy, StorageLevel, default_levels
from simkv.sizing.lifecycle import Event
from simkv.trace.model import TAG_CODES
from tests.conftest import random_trace

A, B = "llama-3.1-8b", "qwen3-8b"
CHUNKS = (1, 7, 4096, None)


def _same(a, b) -> None:
    assert a.summary == b.summary
    assert set(a.frames()) == set(b.frames())
    for name, frame in a.frames().items():
        pd.testing.assert_frame_equal(frame, b.frames()[name], check_exact=True)


def _tagged(trace, seed):
    """Per-block tags, system first, so a template change of one component salts a suffix."""
    rng = np.random.default_rng(seed)
    codes = np.array([TAG_CODES["system"], TAG_CODES["tools"], TAG_CODES["user"]], np.int8)
    tags = np.concatenate([np.sort(rng.choice(codes, int(n)))
                           for n in np.diff(trace.block_offsets)])
    return replace(trace, block_tags=tags)


def _bytes(blocks: int | None, chunk: int) -> int | None:
    return None if blocks is None else blocks * get_model(A).block_bytes(chunk)


EVENT_KINDS = ("replica_restart", "reset", "template_change", "template_change_all", "quota",
               "tier_upgrade", "model_upgrade")


def _event(t: float, kind: str, level: str, blocks: int) -> Event:
    params = {"reset": {"level": level},
              "template_change": {"component": "system"},
              "quota": {"model": A, "capacity_bytes": _bytes(blocks, 16), "level": level},
              "tier_upgrade": {"capacity_bytes": _bytes(blocks, 16), "level": level},
              "model_upgrade": {"model": B}}.get(kind, {})
    return Event(t, "template_change" if kind == "template_change_all" else kind, params)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000),
       caps=st.lists(st.one_of(st.none(), st.integers(0, 24)), min_size=1, max_size=4),
       mult=st.lists(st.sampled_from([1, 2, 4]), min_size=4, max_size=4),
       exclusive=st.booleans(), promote=st.booleans(), demote=st.booleans(),
       second=st.booleans(), ttl=st.lists(st.sampled_from([None, 15.0, 60.0]), min_size=4,
                                         max_size=4),
       quota=st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 8))),
       partial=st.lists(st.booleans(), min_size=4, max_size=4), tagged=st.booleans(),
       events=st.lists(st.tuples(st.floats(0.0, 1.2), st.sampled_from(EVENT_KINDS),
                                 st.integers(0, 3), st.integers(0, 10)), max_size=5))
def test_compiled_equals_reference(seed, caps, mult, exclusive, promote, demote, second, ttl,
                                   quota, partial, tagged, events):
    trace = random_trace(seed, n_requests=80, models=(A, B), duration_s=300.0)
    if tagged:
        trace = _tagged(trace, seed)
    chunks = [16] * len(caps) if exclusive else [16 * m for m in mult[:len(caps)]]
    names = [f"l{i}" for i in range(len(caps))]
    levels = []
    for i, (c, ch) in enumerate(zip(caps, chunks, strict=True)):
        q = ()
        if quota is not None and quota[0] == i:
            q = ((A, _bytes(quota[1], ch)),)
        levels.append(StorageLevel(names[i], _bytes(c, ch), ch, 1e10, 2e10,
                                   latency_s=1e-4 * i, ttl_s=ttl[i], store_partial=partial[i],
                                   persistent=i == len(caps) - 1, quotas_bytes=q))
    h = Hierarchy(tuple(levels), placement="exclusive" if exclusive else "inclusive",
                  promote_on_hit=promote, demote_on_evict=demote,
                  admission="second_access" if second else "all")
    t_end = float(trace.arrival_s[-1])
    evs = [_event(f * t_end, kind, names[lv % len(names)], blocks)
           for f, kind, lv, blocks in events]
    ref = simulate_levels(trace, h, events=evs, sample_interval_s=7.0, engine="reference")
    for n in CHUNKS:
        _same(simulate_levels(trace, h, events=evs, sample_interval_s=7.0, chunk_requests=n), ref)


def test_finer_level_and_default_samples():
    """An HBM level finer than the trace's blocks (approximate re-chunking) and the default
    sampling (1/200 of the trace), with a mid-trace restart and template change."""
    trace = _tagged(random_trace(11, n_requests=150, block_tokens=32, models=(A, B)), 11)
    h = Hierarchy((StorageLevel("hbm", _bytes(20, 8), 8, 1e12, 1e12),
                   StorageLevel("dram", _bytes(30, 32), 32, 1e10, 1e10, 1e-5),
                   StorageLevel("bucket", None, 64, 1e9, 1e9, 1e-3, persistent=True)))
    t = float(trace.arrival_s[60])
    evs = [Event(t, "replica_restart"), Event(t, "template_change", {"component": "tools"})]
    ref = simulate_levels(trace, h, events=evs, engine="reference")
    assert ref.summary["approximate_levels"] == ["hbm"]
    for n in CHUNKS:
        _same(simulate_levels(trace, h, events=evs, chunk_requests=n), ref)


@pytest.mark.parametrize("chunk_requests", CHUNKS)
def test_mooncake_default_hierarchy(mooncake_trace, chunk_requests):
    """The shipped Mooncake trace through the CLI's default levels scaled down (so HBM and
    DRAM evict and demote), with a reset of the bucket and a tier change."""
    trace = mooncake_trace.with_model(A)
    bt = trace.block_tokens
    small = default_levels(hbm_bytes=400 * get_model(A).block_bytes(bt),
                           dram_bytes=1500 * get_model(A).block_bytes(bt), nvme_bytes=0,
                           bucket_bytes=None, hbm_chunk_tokens=bt, chunk_tokens=bt)
    h = Hierarchy(small)
    third = float(trace.arrival_s[len(trace.arrival_s) // 3])
    evs = [Event(third, "reset"),
           Event(2 * third, "tier_upgrade", {"level": "dram",
                                             "capacity_bytes": 300 * get_model(A).block_bytes(bt)})]
    ref = simulate_levels(trace, h, events=evs, engine="reference")
    assert ref.summary["evictions"] > 0 and ref.summary["demoted_bytes"] > 0
    _same(simulate_levels(trace, h, events=evs, chunk_requests=chunk_requests), ref)


def test_unknown_engine_is_an_input_error():
    trace = random_trace(0).with_model(A)
    with pytest.raises(InputError, match="engine"):
        simulate_levels(trace, Hierarchy(default_levels()), engine="fast")
