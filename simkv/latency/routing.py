"""Request routing across replicas, registered by name (``--routing``).

A router (``fn(trace, replicas, estimate)``; a router that ignores the estimate sets
``fn.needs_estimate = False`` and receives None) sees the whole trace up front and returns one replica per request.  Routing is
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

from simkv.cache.stream import dense_block_ids
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


RouterFn = Callable[[Trace, int, RoutingEstimate | None], np.ndarray]
ROUTERS: Registry[RouterFn] = Registry("routing")


@numba.njit(cache=True)
def _route_by_score(ids, req_offsets, arrival, input_tokens, block_tokens, per_token_s, fixed_s,
                    n_rep, n_obj, use_prefix):  # pragma: no cover - compiled
    n_req = req_offsets.shape[0] - 1
    seen = np.zeros(n_obj if use_prefix else 1, dtype=np.uint64)
    busy = np.zeros(n_rep, dtype=np.float64)
    out = np.empty(n_req, dtype=np.int64)
    for i in range(n_req):
        t = arrival[i]
        a = req_offsets[i]
        b = req_offsets[i + 1]
        best = -1
        best_score = np.inf
        best_uncached = 0
        for k in range(n_rep):
            r = (i + k) % n_rep  # ties rotate instead of piling onto replica 0
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


def _scored(trace: Trace, replicas: int, est: RoutingEstimate, use_prefix: bool) -> np.ndarray:
    if replicas == 1:
        return np.zeros(trace.n_requests, dtype=np.int64)
    if use_prefix and replicas > MAX_TRACKED_REPLICAS:
        raise InputError(f"prefix-aware routing tracks at most {MAX_TRACKED_REPLICAS} replicas",
                         where="--replicas")
    if use_prefix:
        ids, n_obj = dense_block_ids(trace)
    else:
        ids, n_obj = np.zeros(0, dtype=np.int64), 0
    return _route_by_score(ids, trace.block_offsets, trace.arrival_s, trace.input_tokens,
                           trace.block_tokens, np.ascontiguousarray(est.per_token_s, dtype=np.float64),
                           float(est.fixed_s), int(replicas), int(n_obj), use_prefix)


@ROUTERS.register("round_robin")
def round_robin(trace: Trace, replicas: int, est: RoutingEstimate) -> np.ndarray:
    """Request ``i`` to replica ``i mod R`` (what a plain load balancer does)."""
    return np.arange(trace.n_requests, dtype=np.int64) % replicas


round_robin.needs_estimate = False  # the caller may skip pricing requests for it


@ROUTERS.register("least_loaded")
def least_loaded(trace: Trace, replicas: int, est: RoutingEstimate) -> np.ndarray:
    """The replica with the least estimated backlog, blind to cache contents."""
    return _scored(trace, replicas, est, use_prefix=False)


@ROUTERS.register("prefix_aware")
def prefix_aware(trace: Trace, replicas: int, est: RoutingEstimate) -> np.ndarray:
    """Minimise estimated wait + prefill of the prompt part the replica has not seen."""
    return _scored(trace, replicas, est, use_prefix=True)
