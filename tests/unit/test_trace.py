import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkv.errors import InputError
from simkv.trace import load_trace, save_trace
from simkv.trace.model import Trace
from tests.conftest import random_trace


def test_mooncake_reader_matches_file(mooncake_path, mooncake_trace):
    lines = mooncake_path.read_text().splitlines()
    assert mooncake_trace.n_requests == len(lines) == 3993
    for i in (0, 17, 3992):
        rec = json.loads(lines[i])
        assert mooncake_trace.arrival_s[i] == rec["timestamp"] / 1000
        assert mooncake_trace.input_tokens[i] == rec["input_length"]
        assert mooncake_trace.blocks(i).tolist() == rec["hash_ids"]
    assert mooncake_trace.block_tokens == 512
    assert mooncake_trace.models == ()


def test_mooncake_parquet_mooncake_is_lossless(tmp_path, mooncake_path, mooncake_trace):
    pq_path = tmp_path / "t.parquet"
    save_trace(mooncake_trace, pq_path)
    back = load_trace(pq_path)
    assert back.equals(mooncake_trace)
    out = tmp_path / "back.jsonl"
    save_trace(back, out)
    # byte-identical to the original file
    assert out.read_bytes() == mooncake_path.read_bytes()


def test_parquet_round_trip_with_everything(tmp_path):
    t = random_trace(3, models=("llama-3.1-8b", "qwen3-8b"))
    rng = np.random.default_rng(0)
    t = Trace.from_arrays(
        block_tokens=t.block_tokens, arrival_s=t.arrival_s, input_tokens=t.input_tokens,
        output_tokens=t.output_tokens, block_offsets=t.block_offsets, block_hashes=t.block_hashes,
        session_ids=t.session_ids, tenant_ids=rng.integers(0, 3, t.n_requests),
        model_index=t.model_index, models=t.models,
        block_tags=rng.integers(0, 6, t.n_block_accesses),
        content_hashes=rng.integers(0, 2**63, t.n_block_accesses, dtype=np.uint64) * 2 + 1,
        meta={"name": "x", "seed": 3},
    )
    p = tmp_path / "t.parquet"
    save_trace(t, p)
    back = load_trace(p)
    assert back.equals(t)
    assert back.meta == {"name": "x", "seed": 3}
    # deterministic bytes
    p2 = tmp_path / "t2.parquet"
    save_trace(t, p2)
    assert p.read_bytes() == p2.read_bytes()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60))
def test_parquet_round_trip_property(tmp_path_factory, seed, n):
    t = random_trace(seed, n_requests=n, models=("qwen3-8b",))
    p = tmp_path_factory.mktemp("rt") / "t.parquet"
    save_trace(t, p)
    assert load_trace(p).equals(t)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40),
       big=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=5))
def test_mooncake_round_trip_property(tmp_path_factory, seed, n, big):
    t = random_trace(seed, n_requests=n, block_tokens=512)
    hashes = t.block_hashes.copy()
    hashes[: len(big)] = np.asarray(big[: len(hashes)], dtype=np.uint64)[: len(hashes)]
    t = Trace.from_arrays(block_tokens=512, arrival_s=np.round(t.arrival_s, 3),
                          input_tokens=t.input_tokens, output_tokens=t.output_tokens,
                          block_offsets=t.block_offsets, block_hashes=hashes)
    d = tmp_path_factory.mktemp("mc")
    save_trace(t, d / "a.jsonl")
    back = load_trace(d / "a.jsonl")
    assert back.equals(t)
    save_trace(back, d / "b.parquet")
    save_trace(load_trace(d / "b.parquet"), d / "c.jsonl")
    assert (d / "c.jsonl").read_bytes() == (d / "a.jsonl").read_bytes()


def test_select_and_token_counts(small_trace):
    sub = small_trace.select(np.array([1, 5, 9]))
    assert sub.n_requests == 3
    assert sub.blocks(1).tolist() == small_trace.blocks(5).tolist()
    counts = small_trace.block_token_counts()
    sums = np.add.reduceat(counts, small_trace.block_offsets[:-1])
    assert np.array_equal(sums, small_trace.input_tokens)


@pytest.mark.parametrize("line,needle", [
    ('{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1]', "line 2: malformed JSON"),
    ('{"timestamp": 0, "output_length": 1, "hash_ids": [1]}', "line 2: missing field 'input_length'"),
    ('{"timestamp": 0, "input_length": -4, "output_length": 1, "hash_ids": []}', "line 2: field 'input_length' must be >= 0"),
    ('{"timestamp": 0, "input_length": 1000, "output_length": 1, "hash_ids": [1]}', "line 2: hash_ids has 1 entries"),
    ('{"timestamp": "x", "input_length": 10, "output_length": 1, "hash_ids": [1]}', "line 2: field 'timestamp'"),
    ('{"timestamp": 0, "input_length": 10, "output_length": "5", "hash_ids": [1]}', "line 2: field 'output_length' must be an integer"),
    ('{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [-1]}', "line 2: hash_ids must hold integers"),
])
def test_mooncake_bad_lines(tmp_path, line, needle):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [7]}\n' + line + "\n")
    with pytest.raises(InputError) as exc:
        load_trace(p)
    assert needle in str(exc.value)
    assert str(p) in str(exc.value)


def test_parquet_wrong_schema(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), p)
    with pytest.raises(InputError, match="not a simkv trace"):
        load_trace(p)
    (tmp_path / "y.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        load_trace(tmp_path / "y.parquet")
