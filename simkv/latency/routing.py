"""Request routing across replicas, registered by name (``--routing``).

A router is registered as a factory ``make(replicas)`` of an object whose ``route(chunk,
estimate)`` returns one replica per request of a chunk, its state (backlogs, what it routed)
carried from chunk to chunk, so the trace streams through it (a factory whose router ignores
the estimate sets ``needs_estimate = False`` and receives None).  Routing is
decided in arrival order with the router's own estimate of each replica's backlog (a fluid
queue: each routed request adds its estimated standalone prefill time), the way a real router
estimates load without seeing inside the engines.  The estimate never reads the simulation's
outcome, so routing is deterministic and runs in one compiled pass.

- ``round_robin``: request ``i`` goes to replica ``i mod R``;
- ``least_loaded``: the replica with the smallest estimated wait (ties rotate);
- ``prefix_aware``: the replica minimising estimated wait + prefill of the part of the prompt
  that replica has not seen (its longest previously routed prefix), so sessions stick to the
  replica that holds their history unless it is too busy.  The router remembers what it routed,
  not what each cache evicted (as approximate prefix-tree routers do).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from simkv.cache.stream import BlockStream
from simkv.errors import InputError
from simkv.registry import Registry
from simkv.trace.model import Trace

#: Replicas a prefix-aware router can track (one bit per replica per block).
MAX_TRACKED_REPLICAS = 64


@dataclass(frozen=True)
class RoutingEstimate:
    """What a router knows of cost: a per-forward overhead and a per-prompt-token time."""

    fixed_s: float
    per_token_s: np.ndarray  # float64 per request


RouterFactory = Callable[[int], "Router"]
ROUTERS: Registry[RouterFactory] = Registry("routing")


@numba.njit(cache=True)
def _route_by_score(ids, req_offsets, arrival, input_tokens, block_tokens, per_token_s, fixed_s,
                    seen, busy, first, use_prefix):  # pragma: no cover - compiled
    """Route one chunk; ``seen`` (per object, a bit per replica), ``busy`` (per replica) and
    ``first`` (the chunk's first request number) carry over from the chunks before."""
    n_req = req_offsets.shape[0] - 1
    n_rep = busy.shape[0]
    out = np.empty(n_req, dtype=np.int64)
    for i in range(n_req):
        t = arrival[i]
        a = req_offsets[i]
        b = req_offsets[i + 1]
        best = -1
        best_score = np.inf
        best_uncached = 0
        for k in range(n_rep):
            r = (first + i + k) % n_rep  # ties rotate instead of piling onto replica 0
            matched = 0
            if use_prefix:
                bit = np.uint64(1) << np.uint64(r)
                j = a
                while j < b and (seen[ids[j]] & bit) != 0:
                    j += 1
                matched = min((j - a) * block_tokens, input_tokens[i])
            uncached = input_tokens[i] - matched
            wait = busy[r] - t
            if wait < 0.0:
                wait = 0.0
            score = wait + fixed_s + per_token_s[i] * uncached
            if score < best_score:
                best_score = score
                best = r
                best_uncached = uncached
        out[i] = best
        start = busy[best] if busy[best] > t else t
        busy[best] = start + fixed_s + per_token_s[i] * best_uncached
        if use_prefix:
            bit = np.uint64(1) << np.uint64(best)
            for j in range(a, b):
                seen[ids[j]] |= bit
    return out


class Router:
    """A router's carried state: requests routed so far; per subclass, what it scores by."""

    needs_estimate = True

    def __init__(self, replicas: int) -> None:
        self.replicas = int(replicas)
        self.first = 0

    def route(self, chunk: Trace, est: RoutingEstimate | None) -> np.ndarray:
        out = self._route(chunk, est)
        self.first += chunk.n_requests
        return out

    def _route(self, chunk: Trace, est: RoutingEstimate | None) -> np.ndarray:
        raise NotImplementedError


class _Scored(Router):
    """Least estimated backlog, plus (``use_prefix``) the prefill of what the replica has not
    been routed before, per block (dense ids carried by a block stream)."""

    use_prefix = False

    def __init__(self, replicas: int) -> None:
        super().__init__(replicas)
        if self.use_prefix and replicas > MAX_TRACKED_REPLICAS:
            raise InputError(f"prefix-aware routing tracks at most {MAX_TRACKED_REPLICAS} "
                             "replicas", where="--replicas")
        self.busy = np.zeros(self.replicas, dtype=np.float64)
        self.blocks = BlockStream() if self.use_prefix else None
        self.seen = np.zeros(1024 if self.use_prefix else 1, dtype=np.uint64)

    def _ids(self, chunk: Trace) -> np.ndarray:
        if self.blocks is None:
            return np.zeros(0, dtype=np.int64)
        stream = self.blocks.feed(chunk)
        if stream.n_objects > self.seen.shape[0]:
            grown = np.zeros(max(stream.n_objects, 2 * self.seen.shape[0]), dtype=np.uint64)
            grown[:self.seen.shape[0]] = self.seen
            self.seen = grown
        return stream.ids

    def _route(self, chunk: Trace, est: RoutingEstimate | None) -> np.ndarray:
        if self.replicas == 1:
            return np.zeros(chunk.n_requests, dtype=np.int64)
        assert est is not None, "a scoring router needs the cost estimate"
        return _route_by_score(self._ids(chunk), chunk.block_offsets, chunk.arrival_s,
                               chunk.input_tokens, chunk.block_tokens,
                               np.ascontiguousarray(est.per_token_s, dtype=np.float64),
                               float(est.fixed_s), self.seen, self.busy, self.first,
                               self.use_prefix)


@ROUTERS.register("round_robin")
class RoundRobin(Router):
    """Request ``i`` to replica ``i mod R`` (what a plain load balancer does)."""

    needs_estimate = False  # the caller may skip pricing requests for it

    def _route(self, chunk: Trace, est: RoutingEstimate | None) -> np.ndarray:
        return (self.first + np.arange(chunk.n_requests, dtype=np.int64)) % self.replicas


@ROUTERS.register("least_loaded")
class LeastLoaded(_Scored):
    """The replica with the least estimated backlog, blind to cache contents."""


@ROUTERS.register("prefix_aware")
class PrefixAware(_Scored):
    """Minimise estimated wait + prefill of the prompt part the replica has not seen."""

    use_prefix = True
