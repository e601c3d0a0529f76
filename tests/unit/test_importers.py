"""Importers: Alibaba 'KVCache in the wild' JSONL and OpenAI-style request logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simkv.errors import InputError
from simkv.trace import load_trace, save_trace
from simkv.trace.importers import BuiltinTokenizer, HFTokenizer, read_alibaba, read_openai_log
from simkv.trace.model import TAG_CODES
from simkv.trace.rechunk import coarser


def jsonl(tmp_path: Path, rows: list, name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


ALIBABA = [
    {"chat_id": 10, "parent_chat_id": -1, "timestamp": 1.0, "input_length": 40,
     "output_length": 7, "type": "text", "turn": 1, "hash_ids": [1, 2, 3]},
    {"chat_id": 11, "parent_chat_id": -1, "timestamp": 1.5, "input_length": 16,
     "output_length": 3, "type": "search", "turn": 1, "hash_ids": [1]},
    {"chat_id": 12, "parent_chat_id": 10, "timestamp": 3.0, "input_length": 70,
     "output_length": 9, "type": "text", "turn": 2, "hash_ids": [1, 2, 4, 5, 6]},
    {"chat_id": 13, "parent_chat_id": 12, "timestamp": 2.5, "input_length": 1,
     "output_length": 1, "type": "text", "turn": 3, "hash_ids": [7]},
    {"chat_id": 14, "parent_chat_id": 999, "timestamp": 4.0, "input_length": 17,
     "output_length": 1, "type": "file", "turn": 2, "hash_ids": [1, 8]},
]


def test_alibaba_sessions_from_parent_chains_and_sorted_times(tmp_path):
    t = load_trace(jsonl(tmp_path, ALIBABA), "alibaba")
    assert t.block_tokens == 16 and t.n_requests == 5
    assert t.arrival_s.tolist() == [1.0, 1.5, 2.5, 3.0, 4.0]  # stable sort by timestamp
    # chat 10 -> 12 -> 13 share a session; 11 alone; 14's parent is unknown -> new session
    assert t.session_ids.tolist() == [0, 1, 0, 0, 2]
    assert t.blocks(3).tolist() == [1, 2, 4, 5, 6] and t.blocks(2).tolist() == [7]
    assert t.input_tokens.tolist() == [40, 16, 1, 70, 17]
    assert t.content_hashes is None and t.block_tags is None and t.models == ()
    assert t.meta["types"] == {"text": 3, "search": 1, "file": 1}


def test_alibaba_parquet_round_trip(tmp_path):
    t = read_alibaba(jsonl(tmp_path, ALIBABA))
    save_trace(t, tmp_path / "t.parquet")
    assert load_trace(tmp_path / "t.parquet").equals(t)


@pytest.mark.parametrize("row,message", [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "must be a JSON object"),
    ({**ALIBABA[0], "hash_ids": [1, 2]}, r"hash_ids has 2 entries, expected ceil\(input_length / 16\) = 3"),
    ({k: v for k, v in ALIBABA[0].items() if k != "input_length"}, "missing field 'input_length'"),
    ({**ALIBABA[0], "timestamp": -1}, "'timestamp' must be a number"),
    ({**ALIBABA[0], "output_length": "7"}, "'output_length' must be an integer"),
    ({**ALIBABA[0], "chat_id": 99, "hash_ids": [1, -2, 3]}, r"integers in \[0, 2\^64\)"),
    ({**ALIBABA[1], "chat_id": 10}, "chat_id 10 appears twice"),
])
def test_alibaba_malformed_line_names_file_and_line(tmp_path, row, message):
    path = jsonl(tmp_path, [ALIBABA[0], row] if row is not ALIBABA[0] else [row])
    with pytest.raises(InputError, match=message) as err:
        read_alibaba(path)
    assert str(err.value).startswith(f"{path}: line 2: ")


def test_alibaba_empty_file(tmp_path):
    with pytest.raises(InputError, match="no requests"):
        read_alibaba(jsonl(tmp_path, []))


# ------------------------------------------------------------------ openai-log
SYSTEM = "You are a careful support assistant for the Acme 3000 router. " * 20


def chat(ts, user, history=(), model="qwen3-32b", **extra):
    msgs = [{"role": "system", "content": SYSTEM}]
    for u, a in history:
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    msgs.append({"role": "user", "content": user})
    return {"timestamp": ts, "model": model, "messages": msgs, **extra}


def test_openai_log_shared_prefix_and_conversation_growth(tmp_path):
    rows = [
        chat(1700000000.0, "How do I reset it?", usage={"completion_tokens": 42},
             session_id="a"),
        chat(1700000005.0, "Which firmware is current?", session_id="b"),
        chat(1700000009.5, "And after that?", history=[("How do I reset it?", "Hold the button.")],
             session_id="a", output_tokens=5),
        chat("2023-11-14T22:13:30Z", "Hi", model="llama-3.1-8b", tenant="t1"),
    ]
    t = read_openai_log(jsonl(tmp_path, rows))
    assert t.block_tokens == 16 and t.n_requests == 4
    assert t.arrival_s[0] == 0.0 and t.arrival_s[2] == 9.5
    assert t.models == ("qwen3-32b", "llama-3.1-8b")
    assert t.model_index.tolist() == [0, 0, 0, 1]
    assert t.session_ids.tolist() == [0, 1, 0, -1] and t.tenant_ids.tolist() == [-1, -1, -1, 0]
    assert t.output_tokens.tolist() == [42, 0, 5, 0]
    a, b, c, d = (t.blocks(i) for i in range(4))
    n_sys = 10  # the system prompt alone is well over 10 blocks of 16
    assert np.array_equal(a[:n_sys], b[:n_sys])
    full = len(a) - 1
    assert np.array_equal(a[:full], c[:full])  # the next turn extends the previous prompt
    assert not np.any(np.isin(d, a))  # another model: different salt
    tags = t.block_tags[t.block_offsets[2]:t.block_offsets[3]]
    assert tags[0] == TAG_CODES["system"] and tags[-1] == TAG_CODES["user"]
    assert TAG_CODES["history"] in tags
    assert t.content_hashes is not None and t.meta["tokenizer"] == "builtin"


def test_openai_log_prompt_forms_and_rechunk_equals_direct_import(tmp_path):
    rows = [{"timestamp": 0, "model": "m", "prompt": list(range(300))},
            {"timestamp": 1, "model": "m", "prompt": list(range(200)) + [7] * 37},
            {"timestamp": 2, "model": "m", "prompt": "plain text prompt " * 30}]
    path = jsonl(tmp_path, rows)
    t16 = read_openai_log(path, block_tokens=16)
    assert t16.input_tokens[:2].tolist() == [300, 237]
    assert np.array_equal(t16.blocks(0)[:12], t16.blocks(1)[:12])  # 192 shared tokens
    assert t16.blocks(0)[12] != t16.blocks(1)[12]
    for coarse in (64, 128):
        direct = read_openai_log(path, block_tokens=coarse)
        re = coarser(t16, coarse)
        assert np.array_equal(re.block_hashes, direct.block_hashes)
        assert np.array_equal(re.content_hashes, direct.content_hashes)
        assert np.array_equal(re.block_tags, direct.block_tags)


def test_builtin_tokenizer_is_deterministic_and_roughly_4_chars_per_token():
    text = "Internationalisation of configuration parameters, e.g. timeouts: 30s."
    a, b = BuiltinTokenizer().encode(text), BuiltinTokenizer().encode(text)
    assert a == b and 10 < len(a) < len(text)
    assert BuiltinTokenizer().encode("hello world") != BuiltinTokenizer().encode("hello there")


def test_tokenizer_json_needs_the_optional_package(tmp_path):
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="'tokenizers' package is not installed"):
            HFTokenizer(tmp_path / "tokenizer.json")
    else:
        with pytest.raises(InputError, match="tokenizer file not found"):
            HFTokenizer(tmp_path / "missing.json")


@pytest.mark.parametrize("row,message", [
    ("{oops", "malformed JSON"),
    ({"model": "m", "prompt": "x"}, "missing field 'timestamp'"),
    ({"timestamp": "yesterday", "model": "m", "prompt": "x"}, "not a number or ISO-8601"),
    ({"timestamp": 1, "prompt": "x"}, "'model' must be a non-empty string"),
    ({"timestamp": 1, "model": "m"}, "needs 'messages' or 'prompt'"),
    ({"timestamp": 1, "model": "m", "messages": []}, "non-empty list"),
    ({"timestamp": 1, "model": "m", "messages": [{"content": "x"}]}, r"messages\[0\] must be an object"),
    ({"timestamp": 1, "model": "m", "messages": [{"role": "user", "content": 5}]}, "'content' must be"),
    ({"timestamp": 1, "model": "m", "prompt": [1, "a"]}, "list of token ids"),
    ({"timestamp": 1, "model": "m", "prompt": ""}, "prompt is empty"),
    ({"timestamp": 1, "model": "m", "prompt": "x", "usage": {"completion_tokens": -1}}, "must be >= 0"),
])
def test_openai_log_malformed_line_names_file_and_line(tmp_path, row, message):
    path = jsonl(tmp_path, [{"timestamp": 0, "model": "m", "prompt": "ok"}, row])
    with pytest.raises(InputError, match=message) as err:
        read_openai_log(path)
    assert str(err.value).startswith(f"{path}: line 2: ")


def test_openai_log_parquet_round_trip(tmp_path):
    t = read_openai_log(jsonl(tmp_path, [chat(5.0, "a"), chat(6.0, "b", tools=[{"name": "f"}])]))
    assert t.block_tags[t.block_offsets[1]] == TAG_CODES["tools"]
    save_trace(t, tmp_path / "t.parquet")
    assert load_trace(tmp_path / "t.parquet").equals(t)
