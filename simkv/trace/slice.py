"""Take part of a trace: a time window, a request range, or a sample of whole sessions.

Slices keep requests whole and in arrival order (``Trace.select``), so every kept request has
its full hash chain; arrival times are kept as they were (a replay starts at the first one).
Session sampling draws ``n`` distinct sessions with a generator from ``seed`` and keeps every
request of each, so multi-turn reuse inside a session survives; requests without a session id
count as their own sessions.
"""

from __future__ import annotations

import numpy as np

from simkv.errors import InputError
from simkv.trace.model import NO_ID, Trace


def by_time(trace: Trace, start_s: float | None = None, end_s: float | None = None) -> Trace:
    """Requests arriving in ``[start_s, end_s)`` seconds after the trace's first arrival."""
    if not trace.n_requests:
        return trace
    rel = trace.arrival_s - trace.arrival_s[0]
    keep = np.ones(trace.n_requests, dtype=bool)
    if start_s is not None:
        keep &= rel >= start_s
    if end_s is not None:
        if start_s is not None and end_s <= start_s:
            raise InputError("must be after --start-s", where="--end-s")
        keep &= rel < end_s
    return trace.select(np.flatnonzero(keep))


def parse_range(text: str, n: int) -> tuple[int, int]:
    """``A:B`` (Python-style, either side optional, B exclusive) within ``n`` requests."""
    parts = text.split(":")
    if len(parts) != 2:
        raise InputError(f"{text!r} is not A:B", where="--requests")
    try:
        a = int(parts[0]) if parts[0].strip() else 0
        b = int(parts[1]) if parts[1].strip() else n
    except ValueError:
        raise InputError(f"{text!r} is not A:B with whole numbers", where="--requests") from None
    if a < 0 or b < a:
        raise InputError(f"{text!r}: need 0 <= A <= B", where="--requests")
    return a, min(b, n)


def by_requests(trace: Trace, start: int, stop: int) -> Trace:
    """Requests ``start .. stop-1`` in arrival order."""
    return trace.select(np.arange(start, min(stop, trace.n_requests)))


def by_sessions(trace: Trace, n_sessions: int, seed: int) -> Trace:
    """Every request of ``n_sessions`` sessions drawn without replacement (seeded)."""
    if n_sessions < 1:
        raise InputError("must be >= 1", where="--sessions")
    sid = trace.session_ids.copy()
    solo = sid == NO_ID
    sid[solo] = -1 - np.flatnonzero(solo)  # each session-less request is its own session
    uniq = np.unique(sid)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    chosen = rng.choice(uniq, size=min(n_sessions, len(uniq)), replace=False)
    return trace.select(np.flatnonzero(np.isin(sid, chosen)))
