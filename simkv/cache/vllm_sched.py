"""vLLM v1's scheduler step by step, over :class:`simkv.cache.vllm_policy.VllmBlockPool`.

With several requests in flight the prefix-cache hits depend on the scheduler, not only on the
pool: read from vLLM 0.32 (``vllm/v1/core/sched/scheduler.py`` ``schedule`` /
``update_from_output``, ``kv_cache_manager.py`` ``allocate_slots``, ``block_pool.py``), for a
full-attention model with chunked prefill, FCFS, no speculative decoding, synchronous
scheduling (the CPU platform turns async scheduling off):

- each step has a token budget (``max_num_batched_tokens``, 2048 on the CPU server); RUNNING
  requests are served first, in order, each ``min(tokens left, budget)`` (a prefill is cut
  into chunks, a decode takes one token);
- a running request whose new blocks do not fit preempts the *last* running request (by
  recompute: its blocks are freed tail first, it goes back to the head of WAITING with nothing
  computed), until it fits or it preempted itself; a step that preempted admits nobody;
- then WAITING requests in order while budget and ``max_num_seqs`` allow: the prefix-cache
  lookup happens *here* (leading cached full blocks, capped at ``num_tokens - 1``), not when
  the request arrived, so a request admitted after another in the same step already hits the
  blocks that one allocated; admission needs the whole prompt's missing blocks free
  (``scheduler_reserve_full_isl``; hit blocks nobody holds count as taken), then the chunk's
  blocks are allocated and every block the chunk fills is cached at once
  (``cache_blocks`` in ``allocate_slots``).  The first request that does not fit stops
  admission (later ones wait: FCFS);
- hits are counted at a request's first admission only (a resumed request is counted apart);
- with an external KV store (LMCache) a hit beyond the local one is loaded asynchronously:
  the request takes blocks for every computed token, leaves the queue for one step (the load
  runs during the next forward pass), then those blocks are cached and it is admitted ahead of
  WAITING.  Its admission keeps the blocks still owed to in-flight prefills free;
- after the forward pass every request whose computed tokens reached its length samples one
  token; one that reached its output length finishes and frees its blocks tail first, in the
  order the requests were scheduled.

The client side is given: ``arrival_step`` per request, or a closed loop (``concurrency``
requests in flight; the next one in order arrives ``arrival_delay_steps`` steps after a request
finishes, as a client at ``--time-scale 0`` sends it when the response ends while the engine
keeps stepping).  An idle engine waits for the next arrival.  At one request in flight this is
exactly :meth:`VllmBlockPool.run_request` one request after another (tested).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from simkv.cache.vllm_policy import VllmBlockPool

#: vLLM defaults on the CPU OpenAI server
DEFAULT_TOKEN_BUDGET = 2048
DEFAULT_MAX_NUM_SEQS = 256


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class SchedConfig:
    token_budget: int = DEFAULT_TOKEN_BUDGET
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS
    #: closed loop: steps between a request's finish and its successor being seen (2: the
    #: median measured on the CPU server, see docs/harness.md; the harness measures it)
    arrival_delay_steps: int = 2
    #: steps an asynchronous external load takes before the request is admitted
    load_steps: int = 1

    def __post_init__(self) -> None:
        if self.token_budget <= 0 or self.max_num_seqs <= 0 or self.arrival_delay_steps < 0 \
                or self.load_steps < 1:
            raise ValueError("token_budget, max_num_seqs, load_steps > 0; arrival_delay_steps >= 0")


@dataclass(eq=False)  # identity: queues hold each request once
class _Req:
    idx: int
    keys: list
    prompt: int
    out: int
    ext_tokens: int                 # the external store's hit (tokens) when first looked up
    num_tokens: int = 0             # prompt + tokens generated so far
    computed: int = 0
    blocks: list[int] = field(default_factory=list)
    n_cached: int = 0
    generated: int = 0
    preemptions: int = 0
    counted: bool = False
    loading: bool = False
    load_done: int = 0              # the step its external load has finished by

    def key(self, k: int, bt: int) -> object:
        return self.keys[k] if k < self.prompt // bt else ("gen", self.idx, k)

    def all_keys(self, bt: int) -> list:
        return [self.key(k, bt) for k in range(self.num_tokens // bt)]


@dataclass(frozen=True)
class SchedResult:
    """Per request (input order): hits counted at first admission, and the step clock."""

    local_hit_tokens: np.ndarray
    external_hit_tokens: np.ndarray
    evictions: np.ndarray
    arrival_step: np.ndarray
    first_token_step: np.ndarray
    finish_step: np.ndarray
    preemptions: np.ndarray
    steps: int
    step_tokens: np.ndarray          # tokens computed in each step (for a step-time model)
    #: what each executed step ran, for a step-time model: rows (step, request, tokens,
    #: tokens computed before; tokens == 1 and computed == length - 1 is a decode), and the
    #: external loads (step admitted, request, tokens loaded)
    step_work: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    loads: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))


class VllmScheduler:
    """The step loop over one pool; ``run`` serves every request and returns the result."""

    def __init__(self, pool: VllmBlockPool, config: SchedConfig = SchedConfig()) -> None:
        self.pool = pool
        self.cfg = config
        self.bt = pool.block_tokens
        self.waiting: deque[_Req] = deque()
        self.running: list[_Req] = []
        self.loading: list[_Req] = []
        self.step = 0

    # ------------------------------------------------------------------ blocks
    def _cache_upto(self, r: _Req, tokens: int) -> None:
        full = min(tokens, r.num_tokens) // self.bt
        for k in range(r.n_cached, full):
            self.pool.cache(r.blocks[k], r.key(k, self.bt))
        r.n_cached = max(r.n_cached, full)

    def _grow(self, r: _Req, tokens: int, *, hit: list[int] | None = None,
              reserve: int = 0, admit: bool = False) -> bool:
        """``allocate_slots``: blocks for ``tokens`` slots (hit blocks adopted first)."""
        hit = hit or []
        held = len(r.blocks) + len(hit)
        need = max(_cdiv(tokens, self.bt) - held, 0) + self.pool.evictable(hit)
        if admit:  # the whole sequence must fit before a new request is admitted
            need = max(need, max(_cdiv(r.num_tokens, self.bt) - held, 0)
                       + self.pool.evictable(hit))
        if need > self.pool.num_free() - reserve:
            return False
        self.pool.touch(hit)
        fresh, ev = self.pool.allocate(max(_cdiv(tokens, self.bt) - held, 0))
        r.blocks += hit + fresh
        if hit:  # adopted blocks are cached already
            r.n_cached = len(hit)
        self.evictions[r.idx] += ev
        return True

    def _free(self, r: _Req) -> None:
        self.pool.release(r.blocks)
        r.blocks, r.n_cached = [], 0

    # ------------------------------------------------------------------ one step
    def _schedule_running(self) -> tuple[list[tuple[_Req, int]], int, bool]:
        budget, out, preempted, i = self.cfg.token_budget, [], False, 0
        while i < len(self.running) and budget > 0:
            r = self.running[i]
            n = min(r.num_tokens - r.computed, budget)
            fits = True
            while fits and not self._grow(r, r.computed + n):
                victim = self.running.pop()  # the lowest priority: the last admitted
                self._free(victim)
                victim.computed, victim.preemptions = 0, victim.preemptions + 1
                self.waiting.appendleft(victim)
                preempted = True
                fits = victim is not r
            if not fits:
                break
            self._cache_upto(r, r.computed + n)  # allocate_slots caches what the chunk fills
            out.append((r, n))
            budget -= n
            i += 1
        return out, budget, preempted

    def _admit(self, r: _Req, budget: int) -> int | None:
        """Try to admit the head of WAITING; tokens scheduled, or None when it must wait."""
        hit: list[int] = []
        ext = 0
        if r.computed == 0:
            hit = self.pool.hit_blocks(r.all_keys(self.bt), r.num_tokens)
            local = len(hit) * self.bt
            ext = max(0, r.ext_tokens - local) if not r.preemptions and not r.counted else 0
            if not r.counted:
                self.local_hits[r.idx], self.ext_hits[r.idx] = local, ext
        else:
            local = r.computed
        computed = min(local + ext, r.num_tokens - 1)  # a full hit recomputes the last token
        if computed > local:  # asynchronous load: blocks for every computed token, admitted next step
            if not self._grow(r, computed, hit=hit, reserve=self._owed(), admit=True):
                return None
            r.counted, r.loading, r.computed = True, True, computed
            r.load_done = self.step + self.cfg.load_steps
            self.loads.append((self.step, r.idx, computed - local))
            self.loading.append(r)
            return 0
        n = min(r.num_tokens - computed, budget)
        if not self._grow(r, computed + n, hit=hit, admit=True):
            return None
        r.counted, r.computed = True, computed
        self._cache_upto(r, computed + n)
        self.running.append(r)
        return n

    def _owed(self) -> int:
        inflight = [r for r in self.running + self.loading if r.computed < r.prompt]
        return sum(max(_cdiv(r.num_tokens, self.bt) - len(r.blocks), 0) for r in inflight)

    def _schedule(self) -> list[tuple[_Req, int]]:
        done = [r for r in self.loading if r.load_done <= self.step]
        for r in reversed(done):  # finished loads: cache their blocks, admit them first
            r.loading = False
            self._cache_upto(r, r.computed)
            self.waiting.appendleft(r)
        self.loading = [r for r in self.loading if r.loading]
        out, budget, preempted = self._schedule_running()
        if preempted:
            return out
        while budget > 0 and self.waiting and len(self.running) < self.cfg.max_num_seqs:
            r = self.waiting[0]
            n = self._admit(r, budget)
            if n is None:
                break
            self.waiting.popleft()
            if n:
                out.append((r, n))
                budget -= n
        return out

    def _execute(self, scheduled: list[tuple[_Req, int]]) -> list[_Req]:
        """The forward pass and ``update_from_output``: sample, finish, free in order."""
        done = []
        for r, n in scheduled:
            self.work.append((self.step, r.idx, n, r.computed))
            r.computed += n
            self._cache_upto(r, r.computed)
            if r.computed < r.num_tokens:
                continue  # a prefill chunk: nothing sampled
            r.generated += 1
            r.num_tokens += 1
            if self.first_token[r.idx] < 0:
                self.first_token[r.idx] = self.step
            if r.generated >= r.out:
                self.running.remove(r)
                self._free(r)
                self.finish[r.idx] = self.step
                done.append(r)
        self.step_tokens.append(sum(n for _, n in scheduled))
        return done

    # ------------------------------------------------------------------ the loop
    def _arrive_next(self, arrive: np.ndarray, closed_loop: bool) -> None:
        """Closed loop: a finish frees a client slot; the next request in order arrives."""
        if closed_loop and (arrive < 0).any():
            arrive[int(np.argmax(arrive < 0))] = self.step + 1 + self.cfg.arrival_delay_steps

    def run(self, keys: list, prompt_tokens, output_tokens, *, external_tokens=None,
            arrival_step=None, concurrency: int | None = None) -> SchedResult:
        """Serve requests ``i`` (chained prompt block ids ``keys[i]``) in the given order.

        ``external_tokens[i]``: the external store's hit in tokens when looked up (0: none).
        Arrivals: ``arrival_step[i]``, or a closed loop of ``concurrency`` in flight.
        """
        n = len(keys)
        ext_in = np.zeros(n, np.int64) if external_tokens is None else np.asarray(external_tokens)
        reqs = [_Req(i, list(keys[i]), int(prompt_tokens[i]), max(int(output_tokens[i]), 1),
                     int(ext_in[i]), num_tokens=int(prompt_tokens[i])) for i in range(n)]
        self.local_hits, self.ext_hits, self.evictions = (np.zeros(n, np.int64) for _ in range(3))
        self.first_token, self.finish = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
        self.step_tokens: list[int] = []
        self.work: list[tuple[int, int, int, int]] = []
        self.loads: list[tuple[int, int, int]] = []
        arrive = np.full(n, -1, np.int64)
        if arrival_step is not None:
            arrive[:] = np.asarray(arrival_step, np.int64)
        else:
            arrive[:min(concurrency or n, n)] = 0
        too_big = {r.idx for r in reqs if self.pool.num_blocks is not None
                   and _cdiv(r.prompt + r.out - 1, self.bt) > self.pool.num_blocks}
        nxt, finished = 0, 0
        while finished < n:
            while nxt < n and 0 <= arrive[nxt] <= self.step:
                if nxt in too_big:  # vLLM refuses it: it never runs
                    self.finish[nxt] = self.step
                    finished += 1
                    self._arrive_next(arrive, arrival_step is None)
                else:
                    self.waiting.append(reqs[nxt])
                nxt += 1
            if not (self.waiting or self.running or self.loading):
                if nxt < n:
                    self.step = max(self.step, int(arrive[nxt]))  # idle: wait for it
                continue
            scheduled = self._schedule()
            if not scheduled and not self.loading:
                raise RuntimeError("the scheduler made no progress (a request larger than "
                                   "the cache)")
            for _ in self._execute(scheduled):
                finished += 1
                self._arrive_next(arrive, arrival_step is None)
            self.step += 1
        return SchedResult(self.local_hits, self.ext_hits, self.evictions, arrive,
                           self.first_token, self.finish,
                           np.asarray([r.preemptions for r in reqs], np.int64), self.step,
                           np.asarray(self.step_tokens, np.int64),
                           np.asarray(self.work, np.int64).reshape(-1, 4),
                           np.asarray(self.loads, np.int64).reshape(-1, 3))
