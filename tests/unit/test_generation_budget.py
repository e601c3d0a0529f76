"""The generation estimate counts one chunk's blocks, since the generator writes chunk by chunk.

Hand calculation for the spec below (system 1000 tokens, no tools or documents, user 100 and
output 100 tokens, 1 turn, full history, 16-token blocks): a request has
(1000 + 200 x 1) / 16 + 1 = 76 blocks.  1000 sessions a day over one day is 1000 requests:
whole, 1000 x 400 + 1000 x 76 x 48 = 4,048,000 bytes plus the catalogue; in chunks of 10
requests, 1000 x 400 + 10 x 76 x 48 = 436,480 bytes plus the same catalogue.
"""

from __future__ import annotations

import pytest

from simkv.workloads.budget import BYTES_PER_CATALOGUE_ITEM, estimate
from simkv.workloads.spec import spec_from_dict

SPEC = {
    "name": "budget-hand", "seed": 1, "duration": "1d", "block_tokens": 16,
    "arrivals": {"rate_per_day": 1000}, "sessions": {"turns": 1},
    "system": {"templates": 1, "tokens": 1000},
    "user": {"tokens": 100}, "output": {"tokens": 100}, "models": [{"name": "qwen3-32b"}],
}


@pytest.fixture
def spec():
    return spec_from_dict(SPEC)


def test_whole_and_chunked_estimates_by_hand(spec):
    catalogue = (1 + spec.tenants.count) * BYTES_PER_CATALOGUE_ITEM
    whole = estimate(spec, 86_400.0)
    chunked = estimate(spec, 86_400.0, chunk_requests=10)
    assert whole["requests"] == pytest.approx(1000)
    assert whole["blocks"] == pytest.approx(76_000)
    assert whole["bytes"] == pytest.approx(4_048_000 + catalogue)
    assert chunked["bytes"] == pytest.approx(436_480 + catalogue)
    # a chunk larger than the trace is the whole trace
    assert estimate(spec, 86_400.0, chunk_requests=10**9)["bytes"] == whole["bytes"]
