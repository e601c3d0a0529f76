"""The step-level vLLM scheduler emulator against hand-worked scenarios, and against the
one-request-at-a-time pool (``VllmBlockPool.run_request``) at one request in flight.

Block size 4 tokens throughout the hand-worked cases; each case's steps are worked out in its
docstring from vLLM 0.32's ``schedule`` / ``allocate_slots`` / ``free_blocks`` rules.
"""

from __future__ import annotations

import numpy as np
import pytest

from simkv.cache.vllm_policy import VllmBlockPool
from simkv.cache.vllm_sched import SchedConfig, VllmScheduler


def _run(num_blocks, keys, prompt, out, **kw):
    return VllmScheduler(VllmBlockPool(num_blocks, 4), kw.pop("cfg", SchedConfig())).run(
        keys, prompt, out, **kw)


def test_two_requests_sharing_a_prefix_admitted_in_one_step():
    """A and B (9 tokens each: full blocks 1, 2 shared, then a partial block) arrive together.
    Step 0 admits A (3 blocks, caching its full blocks 1 and 2 at allocation), then B in the
    same step: its lookup already finds blocks 1 and 2 (8 tokens, under the cap of 9 - 1), so
    B takes 1 fresh block.  Both prefill and finish in step 0 (one output token)."""
    res = _run(16, [[1, 2, 3], [1, 2, 4]], [9, 9], [1, 1], arrival_step=[0, 0])
    assert res.local_hit_tokens.tolist() == [0, 8]
    assert res.first_token_step.tolist() == [0, 0]
    assert res.finish_step.tolist() == [0, 0]
    assert res.steps == 1 and res.step_tokens.tolist() == [9 + 1]
    assert res.evictions.tolist() == [0, 0]


def test_a_pool_too_small_defers_admission_until_blocks_free():
    """Pool of 4 blocks.  A: 13 tokens (4 blocks), 3 output tokens (15 slots, 4 blocks); B: 5
    tokens (2 blocks), other keys.  Step 0 admits A (free 0); B needs 2 > 0 and waits.  A
    decodes in steps 1 and 2 and finishes at step 2, freeing tail first: its last block is
    uncached (to the head), its 3 full prompt blocks to the tail: queue [b3, b2, b1, b0].
    Step 3 admits B: it pops b3 (no eviction) and b2 (evicts A's third prompt block)."""
    res = _run(4, [[1, 2, 3, 4], [7, 8]], [13, 5], [3, 1], arrival_step=[0, 0])
    assert res.first_token_step.tolist() == [0, 3]
    assert res.finish_step.tolist() == [2, 3]
    assert res.evictions.tolist() == [0, 1]
    assert res.preemptions.tolist() == [0, 0]
    assert res.step_tokens.tolist() == [13, 1, 1, 5]


def test_a_running_request_that_needs_a_block_preempts_the_last_one():
    """Pool of 4 blocks; A and B: 4-token prompts (1 block each), 6 output tokens (9 slots, 3
    blocks).  Step 0 admits both (the whole prompt fits: 1 block each).  Step 1: each needs a
    second block for slot 5 (free 2 -> 0).  Steps 2-4 fit.  Step 5: A needs a third block for
    slot 9, none is free: it preempts the last running request, B (freed tail first, both its
    blocks cached, to the queue's tail: [B1, B0]); A pops B1, evicting B's generated block,
    samples its 6th token and finishes.  No admission in a step that preempted.  Step 6: B
    (9 tokens now) finds its prompt block cached but not its generated one (evicted): one hit
    block, 5 tokens recomputed, its 6th token, done.  B's first admission had no hit, and a
    resumed request's hits are not counted."""
    res = _run(4, [[1], [2]], [4, 4], [6, 6], arrival_step=[0, 0])
    assert res.preemptions.tolist() == [0, 1]
    assert res.finish_step.tolist() == [5, 6]
    assert res.first_token_step.tolist() == [0, 0]
    assert res.local_hit_tokens.tolist() == [0, 0]
    assert res.evictions.tolist() == [1, 1]  # A evicts B's generated block; B then A's one
    assert res.step_tokens.tolist() == [8, 2, 2, 2, 2, 1, 5]


def test_closed_loop_arrival_waits_the_given_steps_after_a_finish():
    """Concurrency 1, arrival delay 2 steps: B arrives 1 + 2 steps after A's finish (step 0),
    i.e. at step 3; the idle engine waits for it."""
    res = _run(16, [[1], [2]], [5, 5], [1, 1], concurrency=1,
               cfg=SchedConfig(arrival_delay_steps=2))
    assert res.arrival_step.tolist() == [0, 3]
    assert res.first_token_step.tolist() == [0, 3]


def test_a_chunked_prefill_takes_the_token_budget_per_step():
    """Budget 8 tokens: a 20-token prompt runs as chunks of 8, 8, 4; the first token comes at
    step 2."""
    res = _run(16, [[1, 2, 3, 4, 5]], [20], [1], concurrency=1, cfg=SchedConfig(token_budget=8))
    assert res.step_tokens.tolist() == [8, 8, 4]
    assert res.first_token_step.tolist() == [2]


def _random_requests(seed: int, n: int, bt: int):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    roots = [list(range(1000 * r, 1000 * r + int(rng.integers(2, 12)))) for r in range(5)]
    keys, prompt, out, nid = [], [], [], 10 ** 6
    for _ in range(n):
        extra = int(rng.integers(0, 5))
        chain = roots[int(rng.integers(5))] + list(range(nid, nid + extra + 1))
        nid += extra + 1
        keys.append(chain)
        prompt.append((len(chain) - 1) * bt + int(rng.integers(1, bt + 1)))
        out.append(int(rng.integers(1, 40)))
    return keys, prompt, out, rng


@pytest.mark.parametrize("seed", range(12))
def test_one_in_flight_reproduces_the_serial_pool(seed):
    """At concurrency 1 (any token budget, with or without external hits) every request's hit
    and evictions equal ``run_request`` one after another: the prediction validated exact on
    the engine at one in flight stays what it was."""
    bt = 16
    keys, prompt, out, rng = _random_requests(seed, 60, bt)
    num_blocks = int(rng.integers(20, 60))
    serial = VllmBlockPool(num_blocks, bt)
    want = [serial.run_request(keys[i], prompt[i], out[i]) for i in range(len(keys))]
    # an external store's hit: whole 64-token chunks of the prompt
    ext = (np.minimum(rng.integers(0, 3, len(keys)), np.asarray(prompt) // 64) * 64
           if seed % 2 else None)
    res = VllmScheduler(VllmBlockPool(num_blocks, bt),
                        SchedConfig(token_budget=int(rng.integers(8, 300)))).run(
        keys, prompt, out, external_tokens=ext, concurrency=1)
    assert res.local_hit_tokens.tolist() == [w.hit_blocks * bt for w in want]
    assert res.evictions.tolist() == [w.evictions for w in want]
    if ext is not None:
        assert res.external_hit_tokens.tolist() == [max(0, int(e) - w.hit_blocks * bt)
                                                    for e, w in zip(ext, want, strict=True)]


def test_eight_in_flight_pins_blocks_so_hits_differ_from_serial():
    """Several in flight: the pool is shared, so some requests preempt or hit less than when
    served one by one (not a figure, a check that the overlap is modelled at all)."""
    keys, prompt, out, _ = _random_requests(3, 80, 16)
    serial = VllmBlockPool(30, 16)
    one = sum(serial.run_request(keys[i], prompt[i], out[i]).hit_blocks for i in range(80))
    res = VllmScheduler(VllmBlockPool(30, 16)).run(keys, prompt, out, concurrency=8)
    assert (res.finish_step >= 0).all()
    assert res.local_hit_tokens.sum() != one * 16


def _lat(intercept_s, per_token_s, per_cached_s, decode_s):
    from simkv.latency.api import build_latency_model
    from simkv.latency.calibrate import Calibration

    return build_latency_model(calibration=Calibration(intercept_s, per_token_s, 0.0,
                                                       per_cached_s, decode_step_s=decode_s))


def test_step_priced_ttft_is_the_calibrated_ttft_at_one_in_flight():
    """Calibration: 10 ms fixed, 0.1 ms per uncached token, 0.02 ms per cached token, 2 ms
    decode.  A 300-token prompt alone: 10 + 30 = 40 ms.  The second request (300 tokens
    sharing the first's two full 128-token blocks: 256 cached, 44 computed) after it:
    10 + 4.4 + 5.12 = 19.52 ms.  With a 128-token budget the first runs as chunks 128, 128, 44,
    each step paying the fixed part: 3 x 10 + 30 = 60 ms."""
    from harness.ttft import step_ttft_s

    keys = [[1, 2, 3], [1, 2, 4]]
    lat = _lat(0.01, 1e-4, 2e-5, 0.002)
    prompt = np.asarray([300, 300])
    res = VllmScheduler(VllmBlockPool(None, 128)).run(keys, prompt, [3, 1], concurrency=1)
    assert step_ttft_s(lat, None, res, prompt) == pytest.approx([0.040, 0.01952])
    res = VllmScheduler(VllmBlockPool(None, 128), SchedConfig(token_budget=128)).run(
        keys[:1], prompt[:1], [1], concurrency=1)
    assert step_ttft_s(lat, None, res, prompt[:1]) == pytest.approx([0.060])


def test_step_priced_ttft_counts_the_steps_shared_with_another_request():
    """Both 300-token requests (no shared blocks) arrive together, budget 2048: one step
    prefills both: 10 + 2 x 30 = 70 ms for each first token."""
    from harness.ttft import step_ttft_s

    lat = _lat(0.01, 1e-4, 2e-5, 0.002)
    prompt = np.asarray([300, 300])
    res = VllmScheduler(VllmBlockPool(None, 128)).run([[1, 2, 3], [5, 6, 7]], prompt, [2, 2],
                                                      arrival_step=[0, 0])
    assert step_ttft_s(lat, None, res, prompt) == pytest.approx([0.070, 0.070])


def test_step_priced_ttft_adds_half_the_step_running_when_a_request_arrived():
    """The first 300-token request (3 output tokens) arrives at step 0, the second (no shared
    blocks) is seen at step 1: it arrived while step 0 ran, and the engine core takes it only
    after that forward pass.  Step 0 prefills the first: 10 + 30 = 40 ms.  Step 1 decodes the
    first and prefills the second: 10 + 30 = 40 ms (a decode row adds nothing to a prefilling
    step).  First TTFT 40 ms; second 40 ms + half of step 0 (20 ms) = 60 ms."""
    from harness.ttft import step_ttft_s

    lat = _lat(0.01, 1e-4, 2e-5, 0.002)
    prompt = np.asarray([300, 300])
    res = VllmScheduler(VllmBlockPool(None, 128)).run([[1, 2, 3], [5, 6, 7]], prompt, [3, 1],
                                                      arrival_step=[0, 1])
    assert list(res.first_token_step) == [0, 1]
    assert step_ttft_s(lat, None, res, prompt) == pytest.approx([0.040, 0.060])


def test_step_priced_ttft_pays_the_client_trip_once_per_request():
    """The 10 ms intercept holds a 4 ms client trip (measured one at a time): each step's
    fixed part is 6 ms, and each request adds its trip at this many in flight, here 9 ms.
    One 300-token request in 128-token chunks (128, 128, 44): 3 x 6 + 30 + 9 = 57 ms (60 ms
    with the trip in every step).  At one in flight (trip 4 ms) and a single step it is the
    calibrated TTFT again: 6 + 30 + 4 = 40 ms."""
    from harness.ttft import step_ttft_s

    lat = _lat(0.01, 1e-4, 2e-5, 0.002)
    prompt = np.asarray([300])
    chunked = VllmScheduler(VllmBlockPool(None, 128), SchedConfig(token_budget=128)).run(
        [[1, 2, 3]], prompt, [1], concurrency=1)
    assert step_ttft_s(lat, None, chunked, prompt, trip_s=0.009,
                       one_in_flight_trip_s=0.004) == pytest.approx([0.057])
    whole = VllmScheduler(VllmBlockPool(None, 128)).run([[1, 2, 3]], prompt, [1], concurrency=1)
    assert step_ttft_s(lat, None, whole, prompt, trip_s=0.004,
                       one_in_flight_trip_s=0.004) == pytest.approx([0.040])
