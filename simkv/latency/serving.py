"""The serving simulation under load: one SimPy process per replica draining its queue.

Each replica runs engine steps (continuous batching with chunked prefill, as vLLM does):

- arrived requests wait in a FIFO queue and are admitted while fewer than ``max_concurrency``
  requests hold a slot (a request holds one from admission until its decode ends, so output
  lengths occupy the replica);
- a step gives prefill tokens to admitted requests in order, up to ``token_budget`` tokens
  (a longer prompt is chunked over several steps);
- a step lasts ``fixed + max(sum of work, max of floors) + sum of exposed loads`` over the
  shares of each request's standalone costs it carries;
- a request's first token comes at the end of the step that finishes its prefill; its decode
  then takes ``decode_s`` (one sequence's memory-bound step time per output token).

Per request it reports the queue wait (arrival to the first step that works on it), the wait
for a slot (arrival to admission: a client that caps requests in flight itself sends a request
only then, so its measured TTFT starts there) and TTFT.
Cache lookups happened before (compiled kernel, in arrival order) and the engine steps run in a
compiled loop; SimPy is the shared clock the replica processes synchronise on, one event per
replica per ``sync_s`` of simulated time at most (see ``_replica``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import simpy

from simkv.latency.costs import RequestCosts

#: vLLM's defaults for online serving (max_num_batched_tokens, max_num_seqs); assumptions.
DEFAULT_TOKEN_BUDGET = 8192
DEFAULT_MAX_CONCURRENCY = 256
#: Simulated seconds a replica process runs ahead between SimPy events (0: every busy period).
DEFAULT_SYNC_S = 10.0
_BIG = 1 << 62  # "no limit" for the compiled loop


@dataclass(frozen=True)
class ServingOptions:
    """Per-replica scheduler limits (``None`` = unlimited)."""

    token_budget: int | None = DEFAULT_TOKEN_BUDGET
    max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY
    sync_s: float = DEFAULT_SYNC_S


@dataclass(frozen=True)
class ServingResult:
    queue_s: np.ndarray
    ttft_s: np.ndarray
    steps: int
    admit_s: np.ndarray | None = None


@numba.njit(cache=True)
def _heap_push(heap, size, value):  # pragma: no cover - compiled
    i = size
    heap[i] = value
    while i > 0:
        parent = (i - 1) // 2
        if heap[parent] <= heap[i]:
            break
        heap[parent], heap[i] = heap[i], heap[parent]
        i = parent
    return size + 1


@numba.njit(cache=True)
def _heap_pop(heap, size):  # pragma: no cover - compiled
    size -= 1
    heap[0] = heap[size]
    i = 0
    while True:
        left = 2 * i + 1
        m = i
        if left < size and heap[left] < heap[m]:
            m = left
        if left + 1 < size and heap[left + 1] < heap[m]:
            m = left + 1
        if m == i:
            break
        heap[m], heap[i] = heap[i], heap[m]
        i = m
    return size


@numba.njit(cache=True)
def _advance(fin, iw, out, heap, st, fp):  # pragma: no cover - compiled
    """Run engine steps from ``now`` until the replica is idle with nothing due before the
    horizon (``fp[2]``): one call covers every busy period that starts before it.

    Requests are admitted and finish their prefill in arrival order (FIFO with in-order token
    budget), so the waiting and running sets are index ranges: ``[admitted, nxt)`` waits,
    ``[done, admitted)`` runs.  ``st`` = [nxt, admitted, done, decoding, steps].
    ``fin`` columns: arrival, work, floor, exposed load, decode; ``iw`` columns: prefill tokens,
    tokens left; ``fp`` = [now, fixed_s]; ``st`` also holds [.., token budget, concurrency].
    Few arguments on purpose: the call happens once per busy period.  Returns (end, next wake).
    """
    n = fin.shape[0]
    nxt, admitted, done, decoding = st[0], st[1], st[2], st[3]
    budget, max_conc = st[5], st[6]
    now, fixed_s, horizon = fp[0], fp[1], fp[2]
    while True:
        while nxt < n and fin[nxt, 0] <= now:
            nxt += 1
        while decoding > 0 and heap[0] <= now:
            decoding = _heap_pop(heap, decoding)
        while admitted < nxt and (admitted - done) + decoding < max_conc:
            out[admitted, 2] = now - fin[admitted, 0]
            admitted += 1
        if admitted == done:
            wake = fin[nxt, 0] if nxt < n else np.inf
            if admitted < nxt and decoding > 0 and heap[0] < wake:
                wake = heap[0]
            if wake < horizon:
                now = wake  # idle until the next arrival (or freed slot), within the horizon
                continue
            st[0], st[1], st[2], st[3] = nxt, admitted, done, decoding
            return now, wake
        left = budget
        work = 0.0
        floor = 0.0
        load = 0.0
        finished = 0
        for i in range(done, admitted):
            rem = iw[i, 1]
            if rem == iw[i, 0]:
                out[i, 0] = now - fin[i, 0]
            take = rem if rem <= left else left
            share = take / iw[i, 0]
            work += fin[i, 1] * share
            load += fin[i, 3] * share
            if fin[i, 2] > floor:
                floor = fin[i, 2]
            iw[i, 1] = rem - take
            left -= take
            if rem == take:
                finished += 1
            if left <= 0:
                break
        now += fixed_s + (work if work > floor else floor) + load
        st[4] += 1
        for i in range(done, done + finished):
            out[i, 1] = now - fin[i, 0]
            decoding = _heap_push(heap, decoding, now + fin[i, 4])
        done += finished


def _replica(env: simpy.Environment, fin: np.ndarray, tokens: np.ndarray, out: np.ndarray,
             fixed_s: float, budget: int, max_conc: int, sync_s: float, steps: list):
    """One replica draining its queue, synchronised with the others on the SimPy clock.

    Replicas share nothing once requests are routed and cache hits are known, so a process
    runs engine steps (compiled) for up to ``sync_s`` of simulated time, then yields one event at
    the end of the work it did; ``sync_s=0`` yields once per busy period.  The timeline is the
    one per-step events would give (a test checks it), at a cost per epoch rather than per step.
    """
    n = fin.shape[0]
    iw = np.column_stack([tokens, tokens]).astype(np.int64)
    heap = np.empty(n, dtype=np.float64)
    st = np.array([0, 0, 0, 0, 0, budget, max_conc], dtype=np.int64)
    fp = np.array([fin[0, 0] if n else math.inf, fixed_s, 0.0], dtype=np.float64)
    while fp[0] < math.inf:
        fp[2] = fp[0] + sync_s
        busy_end, fp[0] = _advance(fin, iw, out, heap, st, fp)
        yield env.timeout(busy_end - env.now)
    steps.append(int(st[4]))


def simulate_serving(arrival_s: np.ndarray, replica: np.ndarray, replicas: int,
                     costs: RequestCosts, options: ServingOptions) -> ServingResult:
    """Run every replica's engine loop in one SimPy environment (simulated time only)."""
    n = len(arrival_s)
    queue = np.zeros(n, dtype=np.float64)
    ttft = np.zeros(n, dtype=np.float64)
    admit = np.zeros(n, dtype=np.float64)
    tokens = np.maximum(costs.computed_tokens, 1).astype(np.int64)
    fin = np.column_stack([arrival_s, costs.work_s, costs.floor_s, costs.exposed_load_s,
                           costs.decode_s]).astype(np.float64)
    budget = _BIG if options.token_budget is None else int(options.token_budget)
    max_conc = _BIG if options.max_concurrency is None else int(options.max_concurrency)
    env = simpy.Environment()
    outputs = []
    steps: list[int] = []
    for r in range(replicas):
        rows = np.flatnonzero(replica == r) if replicas > 1 else np.arange(n)
        if not len(rows):
            continue
        out = np.zeros((len(rows), 3), dtype=np.float64)
        outputs.append((rows, out))
        env.process(_replica(env, np.ascontiguousarray(fin[rows]), tokens[rows], out,
                             float(costs.fixed_s), budget, max_conc,
                             float(options.sync_s), steps))
    env.run()
    for rows, out in outputs:
        queue[rows] = out[:, 0]
        ttft[rows] = out[:, 1]
        admit[rows] = out[:, 2]
    return ServingResult(queue_s=queue, ttft_s=ttft, steps=int(sum(steps)), admit_s=admit)
