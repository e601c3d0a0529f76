"""Up-front size estimate of a workload generation, for the resource guard.

Why: a spec of 10^8 sessions a day over 10 years, or a burst repeating every millisecond,
used to run for minutes and die with MemoryError.  Everything that sets the size of a
generation is in the spec, so it is estimated before any draw and refused when over the
``--max-memory`` bound (:func:`simkv.guard.check`).

The estimate is an upper-leaning expectation, not a bound: sessions = rate x window x the
largest burst multiplier (diurnal weights average to 1), requests = sessions x mean turns,
and each request carries its prefix as blocks: system + tools + documents + user tokens of
every turn so far (full history), over ``block_tokens``.  The generator keeps its plan
and request arrays whole but lays out, hashes and writes blocks one chunk of requests at a
time (:func:`simkv.workloads.generator.chunks`), so only one chunk's blocks are counted: a
30-day support-assistant window (1.3e9 block accesses) is about 5.7 GB by this estimate, and
measured 3.1 GB peak RSS.
"""

from __future__ import annotations

from simkv.guard import check
from simkv.workloads.model import WorkloadSpec

DAY_S = 86_400.0
#: Bytes a request costs across the generator's per-request arrays (plan, SimPy, trace).
BYTES_PER_REQUEST = 400
#: Bytes a block access of the chunk being written costs (hash, tag, content hash, offsets,
#: copies).
BYTES_PER_BLOCK = 48
#: Bytes of one template, document or tenant (its length, ids and pick weights).
BYTES_PER_CATALOGUE_ITEM = 64
#: Burst repetitions beyond this are not a workload but a typo (each is a Python step).
MAX_BURST_REPEATS = 1_000_000


def _repeats(spec: WorkloadSpec, window_s: float) -> float:
    total = 0.0
    for b in spec.arrivals.bursts:
        if b.repeat_every_s is None:
            total += 1
        else:
            total += max(0.0, window_s - b.start_s) / b.repeat_every_s + 1
    return total


def estimate(spec: WorkloadSpec, window_s: float,
             chunk_requests: int | None = None) -> dict[str, float]:
    """Expected sessions, requests, block accesses and bytes of generating ``spec``, writing
    ``chunk_requests`` requests at a time (None: the whole trace as one chunk)."""
    peak = max([1.0] + [b.multiplier for b in spec.arrivals.bursts])
    sessions = spec.arrivals.rate_per_day * window_s / DAY_S * peak
    turns = max(1.0, spec.turns.mean_value())
    requests = sessions * turns
    prefix = sum(t.tokens.mean_value() for t in (spec.system, spec.tools) if t is not None)
    if spec.documents is not None:
        prefix += spec.documents.tokens.mean_value() * spec.documents.per_request.mean_value()
    user = spec.user_tokens.mean_value() + spec.output_tokens.mean_value()
    history = (turns + 1) / 2 if spec.history.mode == "full" else 1.0
    blocks_per_request = (prefix + user * history) / spec.block_tokens + 1
    blocks = requests * blocks_per_request
    chunk = requests if chunk_requests is None else min(requests, float(chunk_requests))
    # per-template and per-document arrays are allocated whole, however few are used
    catalogue = sum(t.count for t in (spec.system, spec.tools) if t is not None)
    catalogue += spec.documents.corpus if spec.documents is not None else 0
    catalogue += spec.tenants.count
    return {"sessions": sessions, "requests": requests, "blocks": blocks,
            "bytes": (requests * BYTES_PER_REQUEST + chunk * blocks_per_request * BYTES_PER_BLOCK
                      + catalogue * BYTES_PER_CATALOGUE_ITEM),
            "burst_repeats": _repeats(spec, window_s)}


def check_generation(spec: WorkloadSpec, window_s: float,
                     chunk_requests: int | None = None) -> dict[str, float]:
    """Refuse a generation whose estimate is over the memory bound; the estimate otherwise."""
    est = estimate(spec, window_s, chunk_requests)
    if est["burst_repeats"] > MAX_BURST_REPEATS:
        check(float("inf"), f"{spec.source or spec.name}: field arrivals.bursts repeats "
                            f"{est['burst_repeats']:.3g} times over the window")
    check(est["bytes"], f"{spec.source or spec.name}: generating about "
                        f"{est['requests']:.3g} requests ({est['sessions']:.3g} sessions, "
                        f"{est['blocks']:.3g} blocks)")
    return est
