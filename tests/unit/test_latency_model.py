"""Latency model: parameter counts and FLOPs by hand, the memory floor, load vs recompute."""

import numpy as np
import pytest

from simkv.errors import InputError
from simkv.latency.api import build_latency_model
from simkv.latency.compute import model_compute
from simkv.latency.costs import request_costs
from simkv.latency.hardware import GPUS, TIERS
from simkv.models import get_model


def test_dense_llama_8b_params_and_flops_by_hand():
    c = model_compute(get_model("llama-3.1-8b"))
    # per layer: q 4096x4096, k and v 4096x1024 each, o 4096x4096; MLP 3 x 4096 x 14336
    attn = 4096 * 4096 + 2 * 4096 * 1024 + 4096 * 4096
    mlp = 3 * 4096 * 14336
    assert attn == 41_943_040 and mlp == 176_160_768
    assert c.linear_params_active == 32 * (attn + mlp) == 6_979_321_856
    assert c.total_params == 6_979_321_856 + 2 * 128_256 * 4096  # untied embedding + LM head
    assert round(c.total_params / 1e9, 2) == 8.03  # published size: 8.03B
    # 1000 new tokens after 0 cached: linear + one LM-head row + causal attention
    n = 1000
    expected = (2 * 6_979_321_856 * n + 2 * 128_256 * 4096
                + 32 * 2 * 32 * (128 + 128) * (n * (n + 1) // 2))
    assert c.prefill_flops(n, 0) == pytest.approx(expected, rel=1e-12)
    # with 3000 cached tokens each new query also attends over them
    expected_cached = (2 * 6_979_321_856 * n + 2 * 128_256 * 4096
                       + 32 * 16_384 * (n * 3000 + n * (n + 1) // 2))
    assert c.prefill_flops(n, 3000) == pytest.approx(expected_cached, rel=1e-12)


def test_moe_qwen3_30b_a3b_uses_active_parameters():
    c = model_compute(get_model("qwen3-30b-a3b"))
    attn = 2048 * 32 * 128 + 2 * 2048 * 4 * 128 + 32 * 128 * 2048
    expert = 3 * 2048 * 768
    router = 2048 * 128
    active_layer = attn + 8 * expert + router
    assert c.linear_params_active == 48 * active_layer == 2_730_491_904
    assert c.linear_params_total == 48 * (attn + 128 * expert + router)
    assert round(c.total_params / 1e9, 1) == 30.5  # published: 30.5B total, 3.3B activated
    assert c.active_params / 1e9 == pytest.approx(3.35, abs=0.005)  # 3.3B + embedding rows
    n = 2048
    expected = 2 * 2_730_491_904 * n + 2 * 151_936 * 2048 + 48 * 2 * 32 * 256 * (n * (n + 1) // 2)
    assert c.prefill_flops(n, 0) == pytest.approx(expected, rel=1e-12)
    # one token touches k of E experts; many tokens touch (nearly) all of them
    one = c.weight_bytes_touched(1)
    many = c.weight_bytes_touched(100_000)
    assert many / 2 == pytest.approx(c.total_params - c.embedding_params, rel=1e-6)
    assert one < many / 5


def test_mla_and_moe_deepseek_v3_match_published_sizes():
    c = model_compute(get_model("deepseek-v3"))
    assert c.total_params / 1e9 == pytest.approx(671, rel=0.005)  # 671B (without the MTP module)
    assert c.active_params / 1e9 == pytest.approx(37, rel=0.02)   # 37B activated
    assert c.qk_head_dim == 192 and c.v_head_dim == 128


def test_sliding_window_layers_cap_attention():
    c = model_compute(get_model("gpt-oss-20b"))
    assert c.window_layers == 12 and c.sliding_window == 128
    full_only = (c.layers - c.window_layers) * (10 * 5000 + 55)
    capped = c.window_layers * 10 * 128  # every new query sees the 128-token window
    assert c.attention_pairs(10, 5000) == pytest.approx(full_only + capped)


def test_missing_config_field_is_input_error():
    spec = get_model("llama-3.1-8b")
    raw = dict(spec.raw)
    del raw["intermediate_size"]
    from dataclasses import replace
    with pytest.raises(InputError, match="intermediate_size"):
        model_compute(replace(spec, raw=raw))


def test_gpu_catalogue_and_unknown_names():
    assert {"H100", "H200", "A100", "L40S", "MI300X", "CPU"} <= set(GPUS.names())
    assert GPUS.get("H100").dense_bf16_flops == 989e12
    assert all(GPUS.get(n).source for n in GPUS.names())
    with pytest.raises(InputError, match="valid: .*H100"):
        build_latency_model(gpu="H999")
    with pytest.raises(InputError, match="tier"):
        build_latency_model(tier="floppy")


def _one(lat, spec, inp, resident, loadable, overlap=False):
    return request_costs(lat, [spec], np.zeros(1, dtype=np.int64), [inp], [resident], [loadable],
                         [0], overlap=overlap)


def test_load_beats_recompute_depends_on_tier_bandwidth():
    spec = get_model("llama-3.1-8b")
    fast = build_latency_model(gpu="H100", tier="cpu")
    slow = build_latency_model(gpu="H100", tier="remote-slow")
    # 4,096 new tokens after a 256-token prefix held in the tier
    f = _one(fast, spec, 4096 + 256, 0, 256)
    s = _one(slow, spec, 4096 + 256, 0, 256)
    assert f.load_beats_recompute[0] and f.loaded_tokens[0] == 256 and f.computed_tokens[0] == 4096
    assert not s.load_beats_recompute[0] and s.loaded_tokens[0] == 0
    assert s.computed_tokens[0] == 4096 + 256 and s.load_s[0] == 0
    # the choice is the faster of the two ways, computed independently here
    for lat in (fast, slow):
        load_way = lat.fixed_s + max(lat.work_s(spec, [4096], [256])[0], lat.floor_s(spec, [4096], [256])[0]) \
            + lat.load_s(spec, [256])[0]
        recompute_way = lat.fixed_s + max(lat.work_s(spec, [4352], [0])[0], lat.floor_s(spec, [4352], [0])[0])
        got = _one(lat, spec, 4352, 0, 256).standalone_ttft_s[0]
        assert got == pytest.approx(min(load_way, recompute_way))
    # load time: per-GPU KV bytes over the tier bandwidth plus one chunk latency
    tier = TIERS.get("remote-slow")
    assert slow.load_s(spec, [256])[0] == pytest.approx(spec.kv_bytes(256) / 2e9 + tier.chunk_latency_s)


def test_overlap_hides_load_behind_compute_and_hbm_hits_cost_nothing():
    spec = get_model("llama-3.1-8b")
    lat = build_latency_model(tier="nvme")
    plain = _one(lat, spec, 20_000, 0, 10_000)
    over = _one(lat, spec, 20_000, 0, 10_000, overlap=True)
    assert over.standalone_ttft_s[0] < plain.standalone_ttft_s[0]
    assert over.load_s[0] == plain.load_s[0]
    hbm = build_latency_model(tier="hbm")
    hit = _one(hbm, spec, 20_000, 10_000, 0)
    assert hit.load_s[0] == 0 and hit.load_beats_recompute[0] and hit.cached_tokens[0] == 10_000
    # a full hit still computes one token, as engines do
    full = _one(hbm, spec, 512, 512, 0)
    assert full.computed_tokens[0] == 1 and full.cached_tokens[0] == 511


def test_tensor_parallel_divides_compute():
    spec = get_model("llama-3.1-70b")
    one = build_latency_model(tensor_parallel=1)
    two = build_latency_model(tensor_parallel=2)
    assert two.work_s(spec, [8000], [0])[0] == pytest.approx(one.work_s(spec, [8000], [0])[0] / 2)
    assert two.floor_s(spec, [8000], [0])[0] < one.floor_s(spec, [8000], [0])[0]


def test_prefill_tokens_per_s_prices_self_hosted_recompute():
    from simkv.latency import prefill_tokens_per_s
    from simkv.models import get_model

    small, big = get_model("llama-3.1-8b"), get_model("llama-3.1-70b")
    h100, a100 = prefill_tokens_per_s(small, "H100"), prefill_tokens_per_s(small, "A100")
    # compute-bound at 8k tokens: throughput follows the GPU's FLOP/s and the model's size
    assert h100 / a100 == pytest.approx(989 / 312, rel=0.05)
    assert prefill_tokens_per_s(big, "H100") < h100 / 5
