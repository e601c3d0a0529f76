"""Bounded fuzzing of the trace parsers: any input either parses or raises the clean InputError.

Hypothesis generates both random bytes and structured near-valid JSON lines (the interesting
region: right keys, wrong types and values).  Runs in CI with a fixed budget of examples.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from simkv.errors import InputError
from simkv.trace import load_trace

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5))
values = st.one_of(json_scalars, st.lists(json_scalars, max_size=4),
                   st.lists(st.integers(-5, 2**64 + 5), max_size=4))
record = st.fixed_dictionaries(
    {}, optional={"timestamp": values, "input_length": values, "output_length": values,
                  "hash_ids": values, "extra": values})


def _parse(path) -> None:
    try:
        trace = load_trace(path, "mooncake")
    except InputError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(path) in msg
        return
    assert trace.n_requests >= 1


@FUZZ
@given(data=st.binary(max_size=400))
def test_mooncake_random_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("fz") / "t.jsonl"
    p.write_bytes(data)
    _parse(p)


@FUZZ
@given(records=st.lists(record, min_size=1, max_size=4))
@example(records=[{"timestamp": 0, "input_length": 0, "output_length": 2**70, "hash_ids": []}])
@example(records=[{"timestamp": float("nan"), "input_length": 0, "output_length": 1, "hash_ids": []}])
def test_mooncake_structured(tmp_path_factory, records):
    p = tmp_path_factory.mktemp("fz") / "t.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    _parse(p)


@FUZZ
@given(data=st.binary(min_size=0, max_size=300))
def test_parquet_random_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("fz") / "t.parquet"
    p.write_bytes(b"PAR1" + data + b"PAR1")
    try:
        load_trace(p)
    except InputError as exc:
        assert "\n" not in str(exc)
