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
replica per ``sync_s`` of simulated time at most (see ``_Feed.replica``).  Requests come as a
stream of chunks (``serve_stream``): a feed process appends each chunk when the clock reaches
it, and a replica whose loop would need a request not read yet stops and resumes from the same
state, so the timeline does not depend on the chunking; ``simulate_serving`` is the stream of
one chunk.
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
    tokens left; ``fp`` = [now, fixed_s, horizon, limit]; ``st`` also holds [.., token budget,
    concurrency, stopped].  Requests arriving at or after ``limit`` are not read yet (the
    stream's next chunk): the loop stops before it could need one (``st[7] = 1``) and resumes
    from the same state once they are appended, so the timeline does not depend on the chunks.
    Few arguments on purpose: the call happens once per busy period.  Returns (end, next wake).
    """
    n = fin.shape[0]
    nxt, admitted, done, decoding = st[0], st[1], st[2], st[3]
    budget, max_conc = st[5], st[6]
    now, fixed_s, horizon, limit = fp[0], fp[1], fp[2], fp[3]
    st[7] = 0
    while True:
        if now >= limit:  # an unread request may have arrived by now
            st[0], st[1], st[2], st[3], st[7] = nxt, admitted, done, decoding, 1
            return now, now
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
            if nxt == n and wake >= limit and limit < np.inf:  # next arrival: in an unread chunk
                st[0], st[1], st[2], st[3], st[7] = nxt, admitted, done, decoding, 1
                return now, now
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


class _Replica:
    """One replica's carried state: the requests not yet through prefill (``fin``, ``iw``,
    ``out`` rows, their request numbers ``rows``), the decode heap and the loop's registers."""

    def __init__(self, fixed_s: float, budget: int, max_conc: int) -> None:
        self.fin = np.zeros((0, 5), dtype=np.float64)
        self.iw = np.zeros((0, 2), dtype=np.int64)
        self.out = np.zeros((0, 3), dtype=np.float64)
        self.rows = np.zeros(0, dtype=np.int64)
        self.heap = np.empty(16, dtype=np.float64)
        self.st = np.array([0, 0, 0, 0, 0, budget, max_conc, 0], dtype=np.int64)
        self.fp = np.array([math.inf, fixed_s, 0.0, -math.inf], dtype=np.float64)
        self.emitted = 0

    def append(self, rows: np.ndarray, fin: np.ndarray, tokens: np.ndarray) -> None:
        """Add newly read requests, dropping those already through prefill (emitted)."""
        d = int(self.st[2])
        tok = tokens.astype(np.int64)
        self.fin = np.ascontiguousarray(np.concatenate([self.fin[d:], fin]))
        self.iw = np.ascontiguousarray(np.concatenate([self.iw[d:], np.column_stack([tok, tok])]))
        self.out = np.concatenate([self.out[d:], np.zeros((len(rows), 3))])
        self.rows = np.concatenate([self.rows[d:], rows])
        self.st[0] -= d
        self.st[1] -= d
        self.st[2] = 0
        self.emitted = 0
        need = int(self.st[3]) + len(self.rows)
        if need > self.heap.shape[0]:
            heap = np.empty(max(need, 2 * self.heap.shape[0]), dtype=np.float64)
            heap[:self.st[3]] = self.heap[:self.st[3]]
            self.heap = heap
        if self.fp[0] == math.inf and len(self.rows):
            self.fp[0] = self.fin[0, 0]  # a replica starts at its first request's arrival

    def finished(self) -> tuple[np.ndarray, np.ndarray]:
        """Requests through prefill since the last call: their numbers and (queue, ttft, admit)."""
        a, b = self.emitted, int(self.st[2])
        self.emitted = b
        return self.rows[a:b], self.out[a:b]


@dataclass
class ServingChunk:
    """Requests of one chunk, priced: numbers, arrival, replica, ``RequestCosts``."""

    first: int
    arrival_s: np.ndarray
    replica: np.ndarray
    costs: RequestCosts


class _Feed:
    """The stream's side of the SimPy run: appends chunks as the clock reaches them."""

    def __init__(self, env: simpy.Environment, reps: list[_Replica], on_done) -> None:
        self.env, self.reps, self.on_done = env, reps, on_done
        self.more = env.event()
        self.generation = 0
        self.final = False

    def run(self, chunks):
        """SimPy process: read chunk after chunk (one ahead, for the next first arrival)."""
        it = iter(chunks)
        cur = next(it, None)
        while cur is not None:
            nxt = next(it, None)
            if len(cur.arrival_s) and cur.arrival_s[0] > self.env.now:
                yield self.env.timeout(float(cur.arrival_s[0]) - self.env.now)
            self._append(cur, math.inf if nxt is None else self._first_arrival(nxt))
            cur = nxt
        self.final = True
        for rep in self.reps:
            rep.fp[3] = math.inf
        self._signal()

    @staticmethod
    def _first_arrival(chunk: ServingChunk) -> float:
        return float(chunk.arrival_s[0]) if len(chunk.arrival_s) else -math.inf

    def _append(self, c: ServingChunk, limit: float) -> None:
        costs = c.costs
        fin = np.column_stack([c.arrival_s, costs.work_s, costs.floor_s, costs.exposed_load_s,
                               costs.decode_s]).astype(np.float64)
        tokens = np.maximum(costs.computed_tokens, 1).astype(np.int64)
        numbers = c.first + np.arange(len(c.arrival_s), dtype=np.int64)
        for r, rep in enumerate(self.reps):
            mine = np.flatnonzero(c.replica == r) if len(self.reps) > 1 else \
                np.arange(len(c.arrival_s))
            rep.append(numbers[mine], fin[mine], tokens[mine])
            if limit > rep.fp[3]:
                rep.fp[3] = limit
        self._signal()

    def _signal(self) -> None:
        self.generation += 1
        self.more.succeed()
        self.more = self.env.event()

    def replica(self, rep: _Replica, sync_s: float, steps: list):
        """SimPy process of one replica draining its queue, synchronised with the others.

        Replicas share nothing once requests are routed and cache hits are known, so a process
        runs engine steps (compiled) for up to ``sync_s`` of simulated time, then yields one
        event at the end of the work it did; ``sync_s=0`` yields once per busy period.  The
        timeline is the one per-step events would give (a test checks it), at a cost per epoch
        rather than per step.  When the loop needs requests not read yet it waits for the feed.
        """
        while True:
            if rep.fp[0] == math.inf and self.final:
                break
            seen = self.generation
            if rep.fp[0] < math.inf:
                rep.fp[2] = rep.fp[0] + sync_s
                busy_end, wake = _advance(rep.fin, rep.iw, rep.out, rep.heap, rep.st, rep.fp)
                self.on_done(*rep.finished())
                yield self.env.timeout(max(0.0, busy_end - self.env.now))
                rep.fp[0] = wake  # on a stop for input, where the loop stopped (wake == end)
                if not rep.st[7]:
                    continue
            while self.generation == seen and not self.final:
                yield self.more
        steps.append(int(rep.st[4]))


def serve_stream(chunks, replicas: int, fixed_s: float, options: ServingOptions, on_done) -> int:
    """Run the replicas' engine loops in one SimPy environment over a stream of
    :class:`ServingChunk` (pulled as the simulated clock reaches them), calling
    ``on_done(request_numbers, out)`` (out columns: queue, ttft, admit) as requests finish
    prefill.  Returns the engine steps taken.  Memory: the requests in flight."""
    budget = _BIG if options.token_budget is None else int(options.token_budget)
    max_conc = _BIG if options.max_concurrency is None else int(options.max_concurrency)
    env = simpy.Environment()
    reps = [_Replica(float(fixed_s), budget, max_conc) for _ in range(replicas)]
    feed = _Feed(env, reps, on_done)
    steps: list[int] = []
    env.process(feed.run(chunks))
    for rep in reps:
        env.process(feed.replica(rep, float(options.sync_s), steps))
    env.run()
    return int(sum(steps))


def simulate_serving(arrival_s: np.ndarray, replica: np.ndarray, replicas: int,
                     costs: RequestCosts, options: ServingOptions) -> ServingResult:
    """Every replica's engine loop over in-memory arrays: the stream of one chunk."""
    n = len(arrival_s)
    out = np.zeros((n, 3), dtype=np.float64)

    def collect(rows: np.ndarray, values: np.ndarray) -> None:
        out[rows] = values

    steps = serve_stream([ServingChunk(0, np.asarray(arrival_s, dtype=np.float64),
                                       np.asarray(replica), costs)],
                         int(replicas), float(costs.fixed_s), options, collect)
    return ServingResult(queue_s=out[:, 0].copy(), ttft_s=out[:, 1].copy(), steps=steps,
                         admit_s=out[:, 2].copy())
