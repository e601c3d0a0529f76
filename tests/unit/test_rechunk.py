"""Re-chunking: coarser is exact (equals generating at the coarse size), finer is conservative."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.errors import InputError
from simkv.trace.model import Trace
from simkv.trace.rechunk import coarser, finer, rechunk
from simkv.workloads import generate, spec_from_dict


def spec(**over):
    data = {
        "name": "rechunk", "duration": "40m", "seed": 5, "block_tokens": 16,
        "arrivals": {"rate_per_day": 8000},
        "sessions": {"turns": {"dist": "geometric", "mean": 2}, "think_time_s": 60},
        "system": {"templates": 3, "tokens": {"dist": "uniform", "low": 100, "high": 700}},
        "documents": {"corpus": 20, "tokens": {"dist": "uniform", "low": 50, "high": 300},
                      "per_request": 2, "probability": 0.5},
        "user": {"tokens": {"dist": "lognormal", "median": 30, "sigma": 1.0}},
        "output": {"tokens": {"dist": "lognormal", "median": 60, "sigma": 0.5}},
        "models": [{"name": "qwen3-32b"}],
    }
    data.update(over)
    return spec_from_dict(data)


def at(block_tokens: int, **over) -> Trace:
    return generate(replace(spec(**over), block_tokens=block_tokens))


def same_arrays(a: Trace, b: Trace) -> None:
    assert a.block_tokens == b.block_tokens
    for name in ("block_offsets", "block_hashes", "block_tags", "content_hashes"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.equals(b)


@pytest.mark.parametrize("fine,coarse", [(16, 32), (16, 128), (16, 512), (128, 512), (64, 256)])
def test_coarser_equals_generating_at_the_coarse_size(fine, coarse):
    same_arrays(coarser(at(fine), coarse), at(coarse))


def test_coarsening_in_steps_equals_one_step():
    fine = at(16)
    same_arrays(coarser(coarser(fine, 128), 512), coarser(fine, 512))
    assert coarser(fine, 128).meta["rechunked_from_block_tokens"] == 16


def test_coarser_on_a_third_party_chain_keeps_the_equality_structure():
    # engine-style chain at 4 tokens: id = hash of the prefix up to the block end
    prompts = [list(range(10)), list(range(13)), list(range(8)) + [99, 98], list(range(16))]
    ids: dict[tuple, int] = {}
    hashes, offsets, lengths = [], [0], []
    for p in prompts:
        for e in range(4, len(p) + 4, 4):
            hashes.append(ids.setdefault(tuple(p[:min(e, len(p))]), len(ids) + 1))
        offsets.append(len(hashes))
        lengths.append(len(p))
    t = Trace.from_arrays(block_tokens=4, arrival_s=np.arange(4.0), input_tokens=lengths,
                          output_tokens=[1] * 4, block_offsets=offsets, block_hashes=hashes)
    c = coarser(t, 8)
    expect: dict[tuple, int] = {}
    want = []
    for p in prompts:
        for e in range(8, len(p) + 8, 8):
            want.append(expect.setdefault(tuple(p[:min(e, len(p))]), len(expect)))
    got = {}
    dense = [got.setdefault(int(h), len(got)) for h in c.block_hashes]
    assert dense == want


def test_finer_keeps_coarse_sharing_and_round_trips_the_chain():
    t = at(128)
    f = finer(t, 16)
    assert np.array_equal(f.input_tokens, t.input_tokens)
    assert np.array_equal(np.diff(f.block_offsets), -(-t.input_tokens // 16))
    back = coarser(f, 128)
    assert np.array_equal(back.block_hashes, t.block_hashes)
    assert np.array_equal(back.block_tags, t.block_tags)
    assert f.meta["rechunk_approximate"] is True
    assert ideal_prefix_hit_tokens(f) == ideal_prefix_hit_tokens(t) > 0


def test_bad_sizes_are_refused():
    t = at(16)
    with pytest.raises(InputError, match="multiple of 16"):
        coarser(t, 40)
    with pytest.raises(InputError, match="must divide 16"):
        finer(t, 3)
    with pytest.raises(InputError, match="must be > 0"):
        rechunk(t, 0)
    assert rechunk(t, 16) is t


# ------------------------------------------------------------------ hit ratio property
def ideal_prefix_hit_tokens(t: Trace) -> int:
    """Tokens in each request's leading run of blocks already seen (an infinite cache)."""
    seen: set[int] = set()
    counts = t.block_token_counts()
    hits = 0
    for i in range(t.n_requests):
        lo, hi = t.block_offsets[i], t.block_offsets[i + 1]
        run = True
        for k in range(lo, hi):
            h = int(t.block_hashes[k])
            if run and h in seen:
                hits += int(counts[k])
            else:
                run = False
            seen.add(h)
    return hits


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), factor=st.sampled_from([2, 4, 8, 32]),
       history=st.sampled_from(["full", "none"]), doc_prob=st.floats(0, 1),
       templates=st.integers(1, 4))
def test_coarser_blocks_never_raise_the_prefix_hit_ratio(seed, factor, history, doc_prob,
                                                         templates):
    s = spec(seed=seed, duration="10m", history={"mode": history},
             system={"templates": templates, "tokens": {"dist": "uniform", "low": 20, "high": 400}},
             documents={"corpus": 5, "tokens": {"dist": "uniform", "low": 10, "high": 200},
                        "probability": doc_prob})
    fine = generate(s)
    coarse = coarser(fine, 16 * factor)
    assert ideal_prefix_hit_tokens(coarse) <= ideal_prefix_hit_tokens(fine)
