"""Hypothesis byte mutations of every input format (issue 14).

Each format starts from a small valid file; hypothesis flips, inserts, deletes and
truncates bytes, or splices in hostile snippets (deep nesting, huge integers, NaN, booleans,
invalid UTF-8, a duplicated key).  The parser must either load the file or raise the one
``InputError`` whose single line names the file; any other exception is a bug (no
catch-all hides it: the exception propagates and fails the test).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.economics.pricebook import default_pricebook_dir, load_pricebook
from simkv.errors import InputError
from simkv.latency.calibrate import load_calibration, load_measured
from simkv.models.geometry import get_model
from simkv.sizing.config import load_hierarchy
from simkv.trace import load_trace, save_trace
from simkv.workloads.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=1500 if os.environ.get("SIMKV_FUZZ") == "all" else 150,
                deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SNIPPETS = [b"[" * 3000, b"{\"a\":" * 3000, b"1" * 5000, b"NaN", b"-Infinity", b"true",
            b"\xff\xfe", b"\x00", b"1e400", b"-1", b"18446744073709551616", b"\n\n", b"\"",
            b"&a [*a]", b"*a", b"!!python/object:os.system", b"key: 1\nkey: 2\n", b"\t"]

MOONCAKE = b"".join(json.dumps({"timestamp": t, "input_length": 600, "output_length": 3,
                                "hash_ids": [1, 2 + t]}).encode() + b"\n" for t in range(3))
ALIBABA = b"".join(json.dumps({"chat_id": i, "parent_chat_id": i - 1 if i else -1,
                               "timestamp": float(i), "input_length": 20, "output_length": 2,
                               "type": "text", "turn": i + 1, "hash_ids": [1, 2]}).encode()
                   + b"\n" for i in range(3))
LOG = b"".join(json.dumps({"timestamp": f"2026-01-01T00:00:0{i}Z", "model": "m",
                           "messages": [{"role": "user", "content": f"hello {i}"}],
                           "output_tokens": 3}).encode() + b"\n" for i in range(2))
CONFIG = json.dumps({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "head_dim": 16, "torch_dtype": "bfloat16",
                     "text_config": {"x": 1}, "vocab_size": 100}).encode()
LEVELS = (b"levels:\n  - {name: hbm, capacity: 1GB, chunk_tokens: 16, read_bandwidth: 3TB,"
          b" write_bandwidth: 3TB}\n")
CALIB = (b"intercept_s: 0.01\nper_uncached_token_s: 0.0001\nper_uncached_context_token_s: 0\n"
         b"per_cached_token_s: 0.00001\n")
MEASURED_CSV = (b"request,ttft_s,prompt_tokens,cached_tokens,output_tokens,error\n"
                b"0,0.1,100,0,3,\n1,0.05,100,50,3,\n2,0.2,300,0,3,\n3,0.04,120,80,3,\n")


def _first(path_glob: str) -> bytes:
    return sorted(Path(p) for p in ROOT.glob(path_glob))[0].read_bytes()


def _parquet_bytes(tmp: Path) -> bytes:
    src = tmp / "seed.jsonl"
    src.write_bytes(MOONCAKE)
    out = tmp / "seed.parquet"
    save_trace(load_trace(src), out)
    return out.read_bytes()


def _spec_bytes() -> bytes:
    return _first("workloads/brief-system-prefix.yaml")


def _book_bytes() -> bytes:
    return sorted(p for p in default_pricebook_dir().iterdir()
                  if p.name.endswith(".yaml"))[0].read_bytes()


# name -> (suffix, seed bytes maker, loader)
FORMATS: dict[str, tuple[str, Callable[[Path], bytes], Callable[[Path], object]]] = {
    "mooncake": (".jsonl", lambda t: MOONCAKE, lambda p: load_trace(p, "mooncake")),
    "alibaba": (".jsonl", lambda t: ALIBABA, lambda p: load_trace(p, "alibaba")),
    "openai-log": (".jsonl", lambda t: LOG, lambda p: load_trace(p, "openai-log")),
    "parquet": (".parquet", _parquet_bytes, lambda p: load_trace(p, "parquet")),
    "config.json": (".json", lambda t: CONFIG, get_model),
    "workload spec": (".yaml", lambda t: _spec_bytes(), load_spec),
    "price book": (".yaml", lambda t: _book_bytes(), load_pricebook),
    "levels": (".yaml", lambda t: LEVELS, load_hierarchy),
    "calibration": (".yaml", lambda t: CALIB, load_calibration),
    "measured records": (".csv", lambda t: MEASURED_CSV, load_measured),
}


@st.composite
def mutations(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        else:
            end = pos + draw(st.integers(0, 12))
            data[pos:end] = draw(st.sampled_from(SNIPPETS))
    return bytes(data)


def _check(loader, path: Path) -> None:
    try:
        loader(path)
    except InputError as exc:
        msg = str(exc)
        assert "\n" not in msg, msg
        assert path.name in msg, msg


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_byte_mutations(name, tmp_path_factory):
    suffix, make_seed, loader = FORMATS[name]
    tmp = tmp_path_factory.mktemp("fmt")
    seed = make_seed(tmp)
    target = tmp / f"mutant{suffix}"
    target.write_bytes(seed)
    loader(target)  # the seed itself is valid: mutations start from a file that loads

    @FUZZ
    @given(data=mutations(seed))
    def run(data: bytes) -> None:
        target.write_bytes(data)
        _check(loader, target)

    run()
