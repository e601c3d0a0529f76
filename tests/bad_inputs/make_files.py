"""Write the hostile input files of the corpus (issue 14) into files/.

Run once (``python tests/bad_inputs/make_files.py``) when a case needs a new file; the files
are committed, so the corpus never depends on this script at test time.  Each file is the
smallest input that shows one kind of fault; the case in cases.yaml says what must happen.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FILES = Path(__file__).parent / "files"
GOOD = '{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1]}'
SPEC = """name: tiny
duration: 1h
seed: 1
block_tokens: 16
arrivals:
  rate_per_day: {rate}
sessions:
  turns: 1
system:
  templates: 1
  tokens: 64
user:
  tokens: {{dist: constant, value: 20}}
output:
  tokens: {{dist: constant, value: 5}}
models:
  - name: llama-3.1-8b
"""
CONFIG = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
          "num_key_value_heads": 2, "torch_dtype": "bfloat16"}


def _w(name: str, text: str | bytes) -> None:
    p = FILES / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(text if isinstance(text, bytes) else text.encode())


def _mooncake(name: str, line: str) -> None:
    _w(name, GOOD + "\n" + line + "\n")


def traces() -> None:
    _mooncake("mc_bool_hash.jsonl", '{"timestamp": 1, "input_length": 600, "output_length": 1, '
                                    '"hash_ids": [true, false]}')
    _mooncake("mc_400_digit_time.jsonl", '{"timestamp": ' + "9" * 400 + ', "input_length": 10, '
                                         '"output_length": 1, "hash_ids": [1]}')
    _mooncake("mc_5000_digit_int.jsonl", '{"timestamp": 1, "input_length": ' + "1" * 5000
              + ', "output_length": 1, "hash_ids": [1]}')
    _mooncake("mc_deep.jsonl", "[" * 5_000 + "]" * 5_000)
    _mooncake("mc_nan_time.jsonl", '{"timestamp": NaN, "input_length": 10, "output_length": 1, '
                                   '"hash_ids": [1]}')
    _mooncake("mc_inf_time.jsonl", '{"timestamp": Infinity, "input_length": 10, '
                                   '"output_length": 1, "hash_ids": [1]}')
    _mooncake("mc_bool_length.jsonl", '{"timestamp": 1, "input_length": true, '
                                      '"output_length": 1, "hash_ids": [1]}')
    _mooncake("mc_huge_output.jsonl", '{"timestamp": 1, "input_length": 10, '
                                      '"output_length": 100000000000000000000, "hash_ids": [1]}')
    _mooncake("mc_negative_hash.jsonl", '{"timestamp": 1, "input_length": 10, '
                                        '"output_length": 1, "hash_ids": [-3]}')
    _mooncake("mc_huge_hash.jsonl", '{"timestamp": 1, "input_length": 10, '
                                    '"output_length": 1, "hash_ids": [18446744073709551616]}')
    _mooncake("mc_string_time.jsonl", '{"timestamp": "noon", "input_length": 10, '
                                      '"output_length": 1, "hash_ids": [1]}')
    _mooncake("mc_1e400_length.jsonl", '{"timestamp": 1, "input_length": 1e400, '
                                       '"output_length": 1, "hash_ids": [1]}')
    ali = ('{"chat_id": 1, "parent_chat_id": -1, "timestamp": 1.0, "input_length": 10, '
           '"output_length": 1, "type": "text", "turn": 1, "hash_ids": [1]}')
    _w("ali_negative_time.jsonl", ali + "\n" + ali.replace('"chat_id": 1', '"chat_id": 2')
       .replace('"timestamp": 1.0', '"timestamp": -5') + "\n")
    _w("ali_bool_chat.jsonl", ali.replace('"chat_id": 1', '"chat_id": true') + "\n")
    _w("ali_deep.jsonl", ali + "\n" + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "\n")
    _w("ali_huge_time.jsonl", ali.replace('"timestamp": 1.0', '"timestamp": ' + "7" * 400) + "\n")
    log = {"timestamp": "2026-01-01T00:00:00Z", "model": "m", "messages": [{"role": "user", "content": "hi"}],
           "output_tokens": 3}
    _w("log_before_1970.jsonl", json.dumps({**log, "timestamp": "1969-07-20T20:17:00Z"}) + "\n")
    _w("log_inf_time.jsonl", json.dumps(log) + "\n" + json.dumps(log).replace(
        '"2026-01-01T00:00:00Z"', "1e400") + "\n")
    _w("log_bad_date.jsonl", json.dumps({**log, "timestamp": "2026-13-45T99:00:00Z"}) + "\n")
    _w("log_not_utf8.jsonl", json.dumps(log).encode() + b"\n\xff\xfe{}\n")


def _parquet(name: str, meta: dict[bytes, bytes], rows: int = 2, **columns) -> None:
    table = pa.table({
        "arrival_s": pa.array([0.0, 1.0][:rows], pa.float64()),
        "session_id": pa.array([0, 1][:rows], pa.int64()),
        "tenant_id": pa.array([0, 0][:rows], pa.int32()),
        "model_index": pa.array([0, 0][:rows], pa.int16()),
        "input_tokens": pa.array([16, 16][:rows], pa.int64()),
        "output_tokens": pa.array([1, 1][:rows], pa.int64()),
        "hash_ids": pa.array([[1], [2]][:rows], pa.list_(pa.uint64())),
        **columns,
    })
    base = {b"simkv.schema_version": b"1", b"simkv.block_tokens": b"16", b"simkv.n_blocks": b"2",
            b"simkv.models": b"[]", b"simkv.meta": b"{}"}
    base.update(meta)
    pq.write_table(table.replace_schema_metadata({k: v for k, v in base.items() if v is not None}),
                   FILES / name)


def parquets() -> None:
    _parquet("pq_block_tokens_word.parquet", {b"simkv.block_tokens": b"sixteen"})
    _parquet("pq_block_tokens_zero.parquet", {b"simkv.block_tokens": b"0"})
    _parquet("pq_models_object.parquet", {b"simkv.models": b'{"a": 1}'})
    _parquet("pq_models_ints.parquet", {b"simkv.models": b"[1, 2]"})
    _parquet("pq_meta_list.parquet", {b"simkv.meta": b"[1, 2]"})
    _parquet("pq_meta_not_utf8.parquet", {b"simkv.meta": b"\xff\xfe"})
    _parquet("pq_n_blocks_huge.parquet", {b"simkv.n_blocks": b"1000000000000000000"})
    _parquet("pq_n_blocks_negative.parquet", {b"simkv.n_blocks": b"-5"})
    _parquet("pq_version_huge.parquet", {b"simkv.schema_version": b"9" * 5000})
    _parquet("pq_no_block_tokens.parquet", {b"simkv.block_tokens": None})
    one_model = {b"simkv.models": b'["llama-3.1-8b"]'}
    _parquet("pq_nan_arrival.parquet", one_model,
             arrival_s=pa.array([float("nan"), 1.0], pa.float64()))
    _parquet("pq_inf_arrival.parquet", one_model,
             arrival_s=pa.array([0.0, float("inf")], pa.float64()))
    _parquet("pq_negative_arrival.parquet", one_model,
             arrival_s=pa.array([-5.0, 1.0], pa.float64()))
    _parquet("pq_huge_output.parquet", one_model,
             output_tokens=pa.array([2**62, 1], pa.int64()))
    _parquet("pq_meta_deep.parquet", {b"simkv.meta": b"[" * 5_000 + b"]" * 5_000})


def configs() -> None:
    _w("cfg_not_utf8.json", b'{"num_hidden_layers": 2, "name": "\xff\xfe"}')
    _w("cfg_text_config_string.json", json.dumps({"text_config": "llama", "torch_dtype": "bf16"}))
    _w("cfg_head_dim_word.json", json.dumps({**CONFIG, "head_dim": "sixty-four"}))
    _w("cfg_head_dim_true.json", json.dumps({**CONFIG, "head_dim": True}))
    _w("cfg_head_dim_zero.json", json.dumps({**CONFIG, "head_dim": 0}))
    _w("cfg_huge_layers.json", json.dumps({**CONFIG, "num_hidden_layers": 10**20}))
    _w("cfg_deep.json", "[" * 5_000 + "]" * 5_000)
    _w("cfg_5000_digits.json", '{"num_hidden_layers": ' + "1" * 5000 + "}")
    _w("cfg_dtype_number.json", json.dumps({**CONFIG, "torch_dtype": 5}))
    _w("cfg_vocab_word.json", json.dumps({**CONFIG, "vocab_size": "big"}))
    _w("cfg_layers_float.json", json.dumps({**CONFIG, "num_hidden_layers": 2.5}))
    _w("cfg_list.json", "[1, 2, 3]")
    _w("cfg_kv_lora_bool.json", json.dumps({**CONFIG, "kv_lora_rank": True}))
    _w("cfg_dir/placeholder.txt", "a model directory without config.json\n")


def yamls() -> None:
    _w("spec_bool_seed.yaml", SPEC.format(rate=100).replace("seed: 1", "seed: true"))
    _w("spec_nan_rate.yaml", SPEC.format(rate=".nan"))
    _w("spec_inf_rate.yaml", SPEC.format(rate="1e400"))
    _w("spec_dup_key.yaml", SPEC.format(rate=100).replace("seed: 1", "seed: 1\nseed: 2"))
    _w("spec_deep.yaml", "a: " + "[" * 500 + "]" * 500 + "\n")
    bomb = "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    _w("spec_alias_bomb.yaml", bomb)
    _w("spec_not_utf8.yaml", b"name: x\nseed: \xff\n")
    _w("spec_huge.yaml", SPEC.format(rate=100_000_000).replace("duration: 1h", "duration: 3650d"))
    _w("spec_bool_tokens.yaml", SPEC.format(rate=100).replace("tokens: 64", "tokens: true"))
    _w("spec_burst_storm.yaml", SPEC.format(rate=100).replace("duration: 1h", "duration: 3650d")
       .replace("  rate_per_day: 100\n", "  rate_per_day: 100\n  bursts:\n    - {at: 0, "
                "duration: 0.001, multiplier: 2, repeat_every: 0.001}\n"))
    _w("spec_list.yaml", "- 1\n- 2\n")
    _w("spec_5000_digit_seed.yaml", SPEC.format(rate=100).replace("seed: 1", "seed: " + "7" * 5000))
    _w("levels_unhashable_key.yaml", "levels:\n  - ? [a, b]\n    : 1\n")
    _w("calib_python_tag.yaml", "intercept_s: !!python/object:os.system x\n")
    _w("pb_dup/book.yaml", "kind: per_token\ninput_usd_per_mtok: 1\ninput_usd_per_mtok: 2\n")
    _w("pb_bool/book.yaml", "kind: per_token\ninput_usd_per_mtok: true\n")
    _w("pb_nan/book.yaml", "kind: per_token\ninput_usd_per_mtok: .nan\n")
    _w("pb_deep/book.yaml", "kind: " + "[" * 500 + "]" * 500 + "\n")
    _w("pb_not_utf8/book.yaml", b"kind: per_token\nname: \xff\n")
    _w("levels_dup.yaml", "levels:\n  - name: hbm\n    capacity: 1GB\n    capacity: 2GB\n")
    _w("levels_bool.yaml", "levels:\n  - name: hbm\n    capacity: true\n")
    _w("levels_nan.yaml", "levels:\n  - name: hbm\n    capacity: .nan\n")
    _w("calib_nan.yaml", "intercept_s: .nan\nper_uncached_token_s: 0.001\n")
    _w("calib_bool.yaml", "intercept_s: true\nper_uncached_token_s: 0.001\n")
    _w("calib_dup.yaml", "intercept_s: 0.1\nintercept_s: 0.2\n")
    _w("tiers_dup.yaml", "kind: subscription\nkind: subscription\n")
    _w("tiers_inf.yaml", "kind: subscription\nname: t\ntiers:\n  - name: a\n    capacity: 1GB\n"
                         "    usd_per_month: .inf\nrecompute_usd_per_mtok: 0.15\n")


def others() -> None:
    _w("not_records.parquet", b"PAR1 this is not parquet PAR1")
    _w("records_words.csv", "a,b\nx,y\n")
    _w("existing_output.parquet", b"the user's own file, not simkv's\n")
    _w("out_dir_file", b"a file where a folder is expected\n")
    _w("life_out/records.parquet", b"the user's own records\n")
    _w("replay_out/records.jsonl", b'{"request": 0, "status": "ok"}\n')
    _w("api_key.txt", b"\xff\xfe\xfd\n")
    ec = {"schema_version": 1, "kind": "engine_config", "model_config": "tiny-llama-2l",
          "kv_cache_bytes": 8388608}
    _w("engine_bool_bytes.json", json.dumps({**ec, "kv_cache_bytes": True}))
    _w("engine_nan_l1.json", json.dumps({**ec, "lmcache_l1_gb": float("nan")}))
    _w("engine_deep.json", "[" * 5_000 + "]" * 5_000)
    (FILES / "empty_dir").mkdir(exist_ok=True)
    _w("empty_dir/.keep", b"")


if __name__ == "__main__":
    traces()
    parquets()
    configs()
    yamls()
    others()
