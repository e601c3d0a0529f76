"""The requests a replay sent, as a simkv Trace at the engine's block size.

The prompts' token ids are hashed at ``block_tokens`` (:func:`harness.prompts.chained_keys`),
so a simulation over this trace sees exactly the engine's blocks.  Arrival times are the plan's
send times (non-decreasing); skipped requests stay in as empty prompts so request ids match.
"""

from __future__ import annotations

import numpy as np

from harness.plan import PlannedRequest
from harness.prompts import chained_keys, key_to_u64
from simkv.trace.model import Trace


def engine_trace(plan: list[PlannedRequest], block_tokens: int) -> Trace:
    """The sent requests as a Trace at the engine's block size (trace request ids kept)."""
    reqs = sorted(plan, key=lambda r: r.request)
    inp, outp, hashes, offs = [], [], [], [0]
    for r in reqs:
        keys = [] if r.skip_reason else chained_keys(np.asarray(r.prompt), block_tokens)
        hashes.extend(key_to_u64(k) for k in keys)
        offs.append(len(hashes))
        inp.append(0 if r.skip_reason else len(r.prompt))
        outp.append(r.max_tokens)
    arrival = np.maximum.accumulate(np.asarray([r.scheduled_s for r in reqs], dtype=np.float64))
    return Trace.from_arrays(block_tokens=block_tokens, arrival_s=arrival, input_tokens=inp,
                             output_tokens=outp, block_offsets=offs,
                             block_hashes=np.asarray(hashes, dtype=np.uint64))
