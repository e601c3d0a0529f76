import json

import pytest

from simkv.errors import InputError
from simkv.models import catalogue_names, get_model


@pytest.mark.parametrize("name,per_token", [
    ("llama-3.1-8b", 2 * 32 * 8 * 128 * 2),      # 131,072 B
    ("llama-3.1-70b", 2 * 80 * 8 * 128 * 2),     # 327,680 B
    ("qwen3-8b", 2 * 36 * 8 * 128 * 2),          # 147,456 B
    ("qwen3-32b", 2 * 64 * 8 * 128 * 2),         # 262,144 B
    ("qwen3-30b-a3b", 2 * 48 * 4 * 128 * 2),     # 98,304 B
    ("deepseek-v3", 61 * (512 + 64) * 2),        # 70,272 B (MLA latent)
    ("kimi-k2", 61 * (512 + 64) * 2),
    ("gpt-oss-120b", 18 * 2 * 8 * 64 * 2),       # full-attention layers only (marginal)
    ("gpt-oss-20b", 12 * 2 * 8 * 64 * 2),
])
def test_kv_bytes_per_token_hand_computed(name, per_token):
    assert get_model(name).kv_bytes_per_token == per_token


def test_sliding_window_caps_window_layers():
    m = get_model("gpt-oss-120b")
    per_layer = 2 * 8 * 64 * 2
    assert m.kv_bytes(100) == 36 * per_layer * 100          # under the window: all layers
    assert m.kv_bytes(10_000) == 18 * per_layer * 10_000 + 18 * per_layer * 128


def test_fp8_and_tensor_parallel():
    m = get_model("llama-3.1-70b")
    assert m.with_options(kv_dtype="fp8").kv_bytes_per_token == 2 * 80 * 8 * 128 * 1
    assert m.with_options(tensor_parallel=4).kv_bytes_per_token == 2 * 80 * 2 * 128 * 2
    # more ranks than KV heads: each rank keeps one head (replicated)
    assert m.with_options(tensor_parallel=16).kv_bytes_per_token == 2 * 80 * 1 * 128 * 2
    ds = get_model("deepseek-v3")
    assert ds.with_options(tensor_parallel=8).kv_bytes_per_token == ds.kv_bytes_per_token


def test_head_dim_default_and_explicit(tmp_path):
    cfg = {"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4,
           "num_key_value_heads": 2, "torch_dtype": "float32"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert get_model(tmp_path).kv_bytes_per_token == 2 * 2 * 2 * 64 * 4
    cfg["head_dim"] = 32
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert get_model(tmp_path / "config.json").kv_bytes_per_token == 2 * 2 * 2 * 32 * 4


def test_block_bytes():
    assert get_model("llama-3.1-8b").block_bytes(256) == 256 * 131072


def test_catalogue_has_required_models():
    names = set(catalogue_names())
    assert {"llama-3.1-8b", "llama-3.1-70b", "qwen3-8b", "qwen3-32b", "qwen3-30b-a3b",
            "deepseek-v3", "kimi-k2", "gpt-oss-20b", "gpt-oss-120b"} <= names


def test_bad_configs(tmp_path):
    with pytest.raises(InputError, match="unknown model 'nope'"):
        get_model("nope")
    p = tmp_path / "c.json"
    p.write_text("{bad json")
    with pytest.raises(InputError, match="invalid JSON at line 1"):
        get_model(p)
    p.write_text(json.dumps({"hidden_size": 8, "num_attention_heads": 2}))
    with pytest.raises(InputError, match="missing field 'num_hidden_layers'"):
        get_model(p)
    p.write_text(json.dumps({"num_hidden_layers": -1, "hidden_size": 8, "num_attention_heads": 2}))
    with pytest.raises(InputError, match="num_hidden_layers"):
        get_model(p)
