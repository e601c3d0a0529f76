"""Harness pieces added for issue 16: histogram deltas, LMCache histograms not summed as
counters, lateness from the slot time, the machine-load verdict, the engine config file."""

import json

import pytest

from harness.engineconfig import EngineConfig, load_engine_config
from harness.machine import MachineLoad
from harness.metrics import Snapshot, histogram_deltas, histogram_quantile, lmcache_deltas
from harness.replay import summarize
from simkv.errors import InputError

HIST = """# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1"} %d
vllm:time_to_first_token_seconds_bucket{le="0.2"} %d
vllm:time_to_first_token_seconds_bucket{le="+Inf"} %d
vllm:time_to_first_token_seconds_count %d
vllm:time_to_first_token_seconds_sum %f
"""


def test_histogram_deltas_over_a_replay():
    before = Snapshot.parse(HIST % (5, 5, 5, 5, 0.25))
    after = Snapshot.parse(HIST % (7, 15, 15, 15, 1.75))
    h = histogram_deltas(before, after)["time_to_first_token_seconds"]
    # 10 new requests: 2 below 0.1 s, 8 in (0.1, 0.2]; sum 1.5 s
    assert h["count"] == 10 and h["sum_s"] == pytest.approx(1.5) and h["mean_s"] == pytest.approx(0.15)
    # rank 5 lies 3/8 into the (0.1, 0.2] bucket; rank 9 lies 7/8 into it
    assert h["p50_s"] == pytest.approx(0.1 + 0.1 * 3 / 8)
    assert h["p90_s"] == pytest.approx(0.1 + 0.1 * 7 / 8)
    assert histogram_quantile([], 0.5) is None



def test_histogram_quantiles_are_capped_by_the_mean_when_buckets_are_coarse():
    """60 requests all in the first bucket (le 0.1 s), sum 0.3 s: mean 5 ms.  Interpolation
    alone gives p50 0.05 s and p90 0.09 s; Markov's bound for a nonnegative time caps them at
    mean / 0.5 = 10 ms and mean / 0.1 = 50 ms."""
    h = histogram_deltas(Snapshot.parse(HIST % (0, 0, 0, 0, 0.0)),
                         Snapshot.parse(HIST % (60, 60, 60, 60, 0.3)))["time_to_first_token_seconds"]
    assert h["mean_s"] == pytest.approx(0.005)
    assert h["p50_s"] == pytest.approx(0.010) and h["p90_s"] == pytest.approx(0.050)
    assert histogram_quantile([(0.1, 60.0), (float("inf"), 60.0)], 0.5) == pytest.approx(0.05)

def test_lmcache_histogram_buckets_are_not_summed():
    text = """# TYPE lmcache_mp_l1_chunk_lifetime_seconds histogram
lmcache_mp_l1_chunk_lifetime_seconds_bucket{le="1.0"} %d
lmcache_mp_l1_chunk_lifetime_seconds_bucket{le="+Inf"} %d
lmcache_mp_l1_chunk_lifetime_seconds_count %d
lmcache_mp_l1_chunk_lifetime_seconds_sum %d
"""
    d = lmcache_deltas(Snapshot.parse(text % (1, 2, 2, 3)), Snapshot.parse(text % (1, 5, 5, 9)))
    assert d["lmcache_mp_l1_chunk_lifetime_seconds_count"] == 3   # a delta, not 1+5+5
    assert d["lmcache_mp_l1_chunk_lifetime_seconds_sum"] == 6
    assert not any(k.endswith("_bucket") for k in d)


def test_lateness_counts_from_when_a_slot_freed():
    # time scale 0, one in flight: all scheduled at 0, each ready when the one before ended
    recs = [{"request": i, "scheduled_s": 0.0, "ready_s": 2.0 * i, "sent_s": 2.0 * i + 0.001,
             "status": "ok", "ttft_s": 0.5, "e2e_s": 1.0, "prompt_tokens": 10,
             "cached_tokens": 0} for i in range(11)]
    s = summarize(recs)
    assert s["lateness_p50_s"] == pytest.approx(0.001)  # not the ~10 s of waiting for slots


def test_quiet_needs_low_load_before_and_little_else_running():
    base = dict(cpus=2, wall_s=10.0, machine_busy_cores=1.2, engine_busy_cores=1.0,
                client_busy_cores=0.1, engine_pids=2)
    assert MachineLoad(load_1m_before=0.3, **base).quiet
    assert not MachineLoad(load_1m_before=3.0, **base).quiet          # busy before it started
    busy = dict(base, machine_busy_cores=1.9)                         # 0.8 cores of others
    assert not MachineLoad(load_1m_before=0.3, **busy).quiet
    assert MachineLoad(load_1m_before=0.3, **base).as_dict()["engine_cpu_share"] == 0.5


def test_engine_config_round_trip_and_chunk_units(tmp_path):
    cfg = EngineConfig("tiny-llama-2l", kv_cache_bytes=8 << 20, lmcache=True, lmcache_l1_gb=0.01)
    path = tmp_path / "engine.json"
    cfg.save(path)
    assert load_engine_config(path) == cfg
    # tiny-llama-2l: 2 layers x 2 (K, V) x 4 heads x 32 dims x 2 bytes = 1 KiB per token
    assert cfg.chunk_bytes() == 256 * 1024 and cfg.l1_config().capacity_chunks == 40
    opts = cfg.serve_options(port=9000)
    assert opts.lmcache_chunk_tokens == 256 and opts.lmcache_l1_gb == 0.01
    path.write_text(json.dumps({"kind": "engine_config", "model_config": "x", "bogus": 1}))
    with pytest.raises(InputError, match="bogus"):
        load_engine_config(path)


def test_predicted_ttft_one_in_flight_is_the_calibrated_standalone_time():
    """Two requests back to back, one in flight: each predicted TTFT (from its send, i.e. after
    the slot wait) is the linear model's own a + b*u + c*u*ctx + d*cached, by hand."""
    import numpy as np

    from harness.plan import PlannedRequest
    from harness.predict import CachePrediction
    from harness.ttft import predicted_ttft_s
    from simkv.cache.vllm_policy import TieredPrediction
    from simkv.latency.calibrate import Calibration

    plan = [PlannedRequest(0, 0.0, "e", list(range(3, 1003)), 1000, 4),
            PlannedRequest(1, 0.0, "e", list(range(3, 1003)), 1000, 4)]
    pred = TieredPrediction(np.array([1000, 1000]), np.array([0, 896]), np.array([0, 0]),
                            np.array([0, 0]))
    pc = CachePrediction({"e": pred}, {}, {"e": np.array([0, 1])})
    cal = Calibration(0.01, 1e-4, 1e-8, 1e-6, decode_step_s=0.002)
    ttft, ids = predicted_ttft_s(plan, pc, cal, concurrency=1, token_budget=2048,
                                 model_config="tiny-llama-2l")
    assert ids == [0, 1]
    # request 0: u = 1000, ctx = 500.5: 0.01 + 0.1 + 1e-8 x 1000 x 500.5 = 0.115005
    # request 1: u = 104, cached 896, ctx = 896 + 52.5: 0.01 + 0.0104 + 1e-8 x 104 x 948.5
    #            + 1e-6 x 896 = 0.0222504
    np.testing.assert_allclose(ttft, [0.115005, 0.01 + 0.0104 + 1e-8 * 104 * 948.5 + 0.000896])


def test_cache_prediction_with_an_evicting_l1_by_hand():
    """vLLM: 5 usable blocks of 128; LMCache: 2 chunks of 256, loop wakes at 0.5 s.
    A (520 tokens) stores chunks a1 a2 (L1 full); B's store fails (all or nothing) and evicts
    A from vLLM; the wake at 0.5 s sees 2/2 >= 0.8 and deletes int(0.4) -> 1 key, the least
    recent: A's *last* chunk a2 (reverse order).  A again at 1.0 s: vLLM hit 0, L1 hit a1 only,
    so 256 external tokens."""
    import numpy as np

    from harness.plan import PlannedRequest
    from harness.predict import EngineCacheSpec, predict
    from simkv.cache.lmcache_policy import L1Config

    a = list(range(3, 523))
    b = list(range(1003, 1523))
    plan = [PlannedRequest(0, 0.0, "e", a, 520, 1), PlannedRequest(1, 0.2, "e", b, 520, 1),
            PlannedRequest(2, 1.0, "e", a, 520, 1)]
    times = {0: (0.0, 0.1, 0.1), 1: (0.2, 0.3, 0.3), 2: (1.0, 1.1, 1.1)}
    spec = EngineCacheSpec(128, 5, L1Config(2, 256, wakes_s=(0.5,)))
    pc = predict(plan, {0, 1, 2}, spec, times)
    p = pc.per_endpoint["e"]
    assert pc.request_ids["e"].tolist() == [0, 1, 2]
    assert p.local_hit_tokens.tolist() == [0, 0, 0]
    assert p.external_hit_tokens.tolist() == [0, 0, 256]
    c = pc.l1_counters["e"]
    assert (c["failed_stores"], c["evicted_chunks"], c["ticks"]) == (1, 1, 1)
    assert np.array_equal(p.prompt_tokens, [520, 520, 520])


def test_client_trip_is_the_client_mean_minus_the_server_mean():
    """Client TTFTs 30, 50 ms (the error row and the one without a TTFT do not count): mean
    40 ms; vLLM's histogram mean 32 ms: trip 8 ms.  Two endpoints or no histogram: None."""
    from harness.measure import client_trip_mean_s

    recs = [{"status": "ok", "ttft_s": 0.030}, {"status": "ok", "ttft_s": 0.050},
            {"status": "error", "ttft_s": 0.9}, {"status": "ok", "ttft_s": None}]
    hist = {"time_to_first_token_seconds": {"mean_s": 0.032}}
    assert client_trip_mean_s(recs, {"e": hist}) == pytest.approx(0.008)
    assert client_trip_mean_s(recs, {"e": hist, "f": hist}) is None
    assert client_trip_mean_s(recs, {"e": {}}) is None


def test_pooled_ttft_takes_the_percentiles_of_every_replay_together(monkeypatch):
    """Replay 1: predicted 1, 2 s, measured 1, 2 s; replay 2: predicted 3, 4 s, measured 3,
    5 s.  Pooled (linear percentiles of four): predicted p50 2.5, p90 3.7; measured p50 2.5,
    p90 4.4, so the p90 error is 0.7 / 4.4."""
    import numpy as np

    import harness.validate as hv

    pairs = iter([(np.array([1.0, 2.0]), np.array([1.0, 2.0])),
                  (np.array([3.0, 4.0]), np.array([3.0, 5.0]))])
    monkeypatch.setattr(hv, "_compare", lambda m, o: (f"result {m}", next(pairs)))
    res = hv.compare_pooled([1, 2], [None, None])
    assert res.replays == ["result 1", "result 2"]
    assert res.ttft["predicted_ttft_p50_s"] == pytest.approx(2.5)
    assert res.ttft["measured_ttft_p90_s"] == pytest.approx(4.4)
    assert res.ttft["ttft_p50_rel_error"] == pytest.approx(0.0)
    assert res.ttft["ttft_p90_rel_error"] == pytest.approx(0.7 / 4.4)


def test_pooled_hits_are_ratios_of_summed_tokens():
    """Replay 1: 1,000 query tokens, measured ratio 0.5, predicted 0.6, LMCache 1,000 measured /
    900 predicted external tokens; replay 2: 3,000 query tokens at 0.2 both, 3,000 / 3,300.
    Pooled: measured (500 + 600) / 4,000 = 0.275, predicted (600 + 600) / 4,000 = 0.3, error
    0.025 (the worse replay alone 0.1); external 4,200 against 4,000: 5%."""
    from harness.validate import PooledResult, ValidateResult

    def one(q, m, p, me, pe):
        return ValidateResult(
            requests_sent=10, skipped=0, block_tokens=128, cache_blocks=64,
            measured_prefix_queries_tokens=q, predicted_prefix_queries_tokens=q,
            measured_prefix_hit_ratio=m, predicted_prefix_hit_ratio=p, prefix_hit_abs_error=abs(p - m),
            concurrency=8, measured_ttft_p50_s=None, measured_ttft_p90_s=None, measured_ttft_p99_s=None,
            lmcache={"measured_external_hit_tokens": me, "predicted_external_hit_tokens": pe})

    pooled = PooledResult([one(1000, 0.5, 0.6, 1000, 900), one(3000, 0.2, 0.2, 3000, 3300)], {}).cache()
    assert pooled["measured_prefix_hit_ratio"] == pytest.approx(0.275)
    assert pooled["predicted_prefix_hit_ratio"] == pytest.approx(0.3)
    assert pooled["prefix_hit_abs_error"] == pytest.approx(0.025)
    assert pooled["prefix_hit_abs_error_max"] == pytest.approx(0.1)
    assert pooled["external_hit_tokens_rel_error"] == pytest.approx(0.05)


def test_probe_spans_the_engine_lengths_with_warm_followers():
    """72 cold prompts log-spaced from 32 to 4,092 tokens (4,096 less the 4 output tokens);
    about a quarter followed by a warm one that shares whole blocks of the one before it and
    adds one block of its own.  Same seed, same trace."""
    import numpy as np

    from harness.probe import probe_trace

    t = probe_trace(4096, n_cold=72, block_tokens=64, seed=3)
    lens = t.input_tokens
    assert lens.min() == 32 and lens.max() == 4092
    assert ((lens + t.output_tokens) <= 4096).all()
    chains = [tuple(t.block_hashes[t.block_offsets[i]:t.block_offsets[i + 1]]) for i in range(t.n_requests)]
    warm = [i for i in range(1, t.n_requests) if chains[i][0] == chains[i - 1][0]]
    assert t.n_requests == 72 + len(warm) and 12 <= len(warm) <= 18
    for i in warm:
        shared = len(chains[i]) - 1
        assert chains[i][:shared] == chains[i - 1][:shared] and chains[i][-1] not in chains[i - 1]
        assert shared * 64 < lens[i] <= (shared + 1) * 64
    cold = np.delete(lens, warm)
    assert len(np.unique(cold)) >= 60  # spread, not repeated
    again = probe_trace(4096, n_cold=72, block_tokens=64, seed=3)
    assert (again.input_tokens == lens).all() and (again.block_hashes == t.block_hashes).all()
