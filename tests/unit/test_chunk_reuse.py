"""Non-prefix (CacheBlend-style) reuse in the engine: issue 10's engine-side tests."""

import numpy as np
import pytest

from simkv.cache import CacheConfig, simulate
from simkv.trace.model import Trace


def _trace(requests, block_tokens=4):
    """requests: list of lists of (chained_hash, content_hash); every block full."""
    offsets = np.cumsum([0] + [len(r) for r in requests])
    return Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=np.arange(len(requests), dtype=float),
        input_tokens=[len(r) * block_tokens for r in requests], output_tokens=[1] * len(requests),
        block_offsets=offsets, block_hashes=[c for r in requests for c, _ in r],
        content_hashes=[h for r in requests for _, h in r])


def test_documents_after_different_prefixes():
    # request 1: system prompt S, document D (2 blocks); request 2: other prompt T, same D
    r1 = [(1, 100), (2, 200), (3, 201)]
    r2 = [(9, 900), (10, 200), (11, 201)]   # chained hashes differ, contents of D match
    t = _trace([r1, r2])
    prefix = simulate(t, CacheConfig(reuse="prefix")).records
    chunk = simulate(t, CacheConfig(reuse="chunk", blend_recompute_share=0.0)).records
    assert prefix["reused_tokens"].tolist() == [0, 0]
    assert chunk["reused_tokens"].tolist() == [0, 8]
    assert chunk["prefix_hit_tokens"].tolist() == [0, 0]


def test_no_shared_documents_modes_agree():
    # content shared only where the whole prefix is shared: both modes see the same reuse
    reqs = [[(1, 11), (2, 12)], [(1, 11), (2, 12), (3, 13)], [(5, 15)], [(1, 11), (7, 17)]]
    t = _trace(reqs)
    a = simulate(t, CacheConfig(reuse="prefix")).records["reused_tokens"].tolist()
    b = simulate(t, CacheConfig(reuse="chunk", blend_recompute_share=0.3)).records["reused_tokens"].tolist()
    assert a == b == [0, 8, 0, 4]


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_recompute_share_reduces_savings_proportionally(share):
    r1 = [(1, 100)] + [(i, 1000 + i) for i in range(2, 12)]
    r2 = [(50, 500)] + [(i + 100, 1000 + i) for i in range(2, 12)]   # 10 doc blocks, new prefix
    t = _trace([r1, r2])
    rec = simulate(t, CacheConfig(reuse="chunk", blend_recompute_share=share)).records
    nonprefix = 10 * 4
    assert rec["chunk_hit_tokens"].iloc[1] == nonprefix
    assert rec["blend_recompute_tokens"].iloc[1] == int(np.floor(nonprefix * share))
    assert rec["reused_tokens"].iloc[1] == nonprefix - int(np.floor(nonprefix * share))
    assert rec["missed_tokens"].iloc[1] == 44 - rec["reused_tokens"].iloc[1]


def test_leading_content_hit_without_its_prefix_blends():
    # request 2 starts with the document that request 1 had after its system prompt: the
    # content is cached, but the block never appeared at position 0 (new chained hash)
    r1 = [(1, 100), (2, 200)]
    r2 = [(7, 200), (8, 300)]
    rec = simulate(_trace([r1, r2]), CacheConfig(reuse="chunk", blend_recompute_share=0.5)).records
    assert rec["prefix_hit_tokens"].tolist() == [0, 0]
    assert rec["chunk_hit_tokens"].tolist() == [0, 4]
    assert rec["blend_recompute_tokens"].tolist() == [0, 2]
    # the same prompt again is an exact prefix hit: nothing blends
    rec = simulate(_trace([r1, r1]), CacheConfig(reuse="chunk", blend_recompute_share=0.5)).records
    assert rec["prefix_hit_tokens"].tolist() == [0, 8]
    assert rec["blend_recompute_tokens"].tolist() == [0, 0]
