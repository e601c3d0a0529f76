"""The whole-file v2 load (column by column into final arrays) equals the chunked reader."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

import simkv.trace.parquet as parquet
from simkv.errors import InputError
from simkv.trace import load_trace, save_trace
from simkv.trace.model import Trace, concat_traces
from simkv.trace.parquet import iter_parquet, read_parquet
from tests.conftest import random_trace


def _rich(seed: int) -> Trace:
    t = random_trace(seed, n_requests=300, models=("llama-3.1-8b",))
    rng = np.random.default_rng(seed)
    return Trace.from_arrays(
        block_tokens=t.block_tokens, arrival_s=t.arrival_s, input_tokens=t.input_tokens,
        output_tokens=t.output_tokens, block_offsets=t.block_offsets, block_hashes=t.block_hashes,
        session_ids=t.session_ids, model_index=t.model_index, models=t.models,
        block_tags=rng.integers(0, 6, t.n_block_accesses),
        content_hashes=rng.integers(0, 2**63, t.n_block_accesses, dtype=np.uint64))


def test_many_row_groups_and_column_subsets(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "ROW_GROUP_BLOCKS", 64)  # dozens of row groups
    t = _rich(1)
    path = tmp_path / "t.parquet"
    save_trace(t, path)
    assert pq.ParquetFile(str(path)).metadata.num_row_groups > 10
    assert load_trace(path).equals(t)
    for cols in [(), ("block_tags",), ("content_hashes",)]:
        whole = read_parquet(path, columns=cols)
        assert whole.equals(concat_traces(list(iter_parquet(path, 17, cols))))
        assert (whole.block_tags is None) == ("block_tags" not in cols)


def test_block_count_claim_is_checked(tmp_path):
    t = _rich(2)
    path = tmp_path / "t.parquet"
    save_trace(t, path)
    table = pq.read_table(str(path))
    meta = dict(pq.ParquetFile(str(path)).metadata.metadata)
    for wrong in (t.n_block_accesses - 1, t.n_block_accesses + 1):
        bad = tmp_path / f"bad{wrong}.parquet"
        meta[b"simkv.n_blocks"] = str(wrong).encode()
        pq.write_table(table.replace_schema_metadata(meta), str(bad))
        with pytest.raises(InputError, match="metadata says"):
            read_parquet(bad)
