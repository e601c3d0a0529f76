"""Trace loading: speed, and peak memory against the size of the loaded arrays.

Each load runs in a fresh process that reports its peak resident memory (VmHWM) minus its
resident memory just before loading (after imports), so arrow's and numpy's allocations all
count.  A tiny file of the same format is loaded first so that start-up allocations (arrow's
allocator arenas, thread pools) are not charged to the trace.  The goal (issue 2) is that memory stays within about twice the arrays' size.
"""

import json
import subprocess
import sys

import pytest

from simkv.trace import load_trace, save_trace
from tests.bench.streams import prefix_stream

pytestmark = pytest.mark.bench

PROBE = r"""
import json, sys
from simkv.trace import load_trace
import simkv.trace.parquet, simkv.trace.mooncake
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
load_trace(sys.argv[2])  # warm-up on a tiny file: allocator arenas and thread pools exist now
before = status("VmRSS:")
t = load_trace(sys.argv[1])
print(json.dumps({"delta_bytes": status("VmHWM:") - before, "array_bytes": t.nbytes()}))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("load")
    trace = prefix_stream(n_requests=50_000, block_tokens=512)
    save_trace(trace, d / "t.parquet")
    save_trace(trace, d / "t.jsonl")
    tiny = trace.head(10)
    save_trace(tiny, d / "tiny.parquet")
    save_trace(tiny, d / "tiny.jsonl")
    return d, trace


@pytest.mark.parametrize("name", ["t.parquet", "t.jsonl"])
def test_load_memory(benchmark, files, name):
    d, original = files
    tiny = d / name.replace("t.", "tiny.")
    out = subprocess.run([sys.executable, "-c", PROBE, str(d / name), str(tiny)], capture_output=True,
                         text=True, check=True)
    probe = json.loads(out.stdout)
    loaded = benchmark.pedantic(load_trace, args=(d / name,), rounds=3, iterations=1)
    assert loaded.equals(original)
    benchmark.extra_info.update({
        "blocks": original.n_block_accesses,
        "array_bytes": probe["array_bytes"],
        "load_peak_memory_ratio": probe["delta_bytes"] / probe["array_bytes"],
        "blocks_per_s": original.n_block_accesses / benchmark.stats.stats.median,
    })
