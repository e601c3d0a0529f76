"""Take part of a trace: a time window, a request range, or a sample of whole sessions.

Slices keep requests whole and in arrival order (``Trace.select``), so every kept request has
its full hash chain; arrival times are kept as they were (a replay starts at the first one).
Session sampling draws ``n`` distinct sessions with a generator from ``seed`` and keeps every
request of each, so multi-turn reuse inside a session survives; requests without a session id
count as their own sessions.

:func:`slice_chunks` is the streamed form the CLI uses (the whole-trace functions stay for the
Python API): the time window and the request range are one pass of filters over the chunks,
stopping once past the window; a session sample makes two passes, the first collecting the
distinct session ids (memory: the sessions, plus a count of the session-less requests), the
second writing the kept requests.  It draws the same sample as :func:`by_sessions`: that one
draws from the sorted unique ids, whose length is all the draw depends on, so drawing positions
in that sorted order and mapping them back picks the same sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

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


def parse_range(text: str, n: int | None) -> tuple[int, int]:
    """``A:B`` (Python-style, either side optional, B exclusive) within ``n`` requests (None:
    not known yet, a stream)."""
    n = np.iinfo(np.int64).max if n is None else n
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


def check_window(start_s: float | None, end_s: float | None) -> None:
    """The time window is well formed (checked before reading, so it fails up front)."""
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise InputError("must be after --start-s", where="--end-s")


def window_chunks(chunks: Iterable[Trace], start_s: float | None = None,
                  end_s: float | None = None, rows: tuple[int, int] | None = None,
                  counts: dict | None = None) -> Iterator[Trace]:
    """:func:`by_time` then :func:`by_requests` (``rows`` indexes the requests the window kept),
    over a stream; carries the first arrival and the count kept so far; stops once past both.
    ``counts["in_window"]``: the requests the time window kept (exact once exhausted)."""
    check_window(start_s, end_s)
    t0, kept = None, 0
    for chunk in chunks:
        if not chunk.n_requests:
            continue
        if t0 is None:
            t0 = chunk.arrival_s[0]
        keep = np.ones(chunk.n_requests, dtype=bool)
        rel = chunk.arrival_s - t0
        if start_s is not None:
            keep &= rel >= start_s
        if end_s is not None:
            keep &= rel < end_s
        idx = np.flatnonzero(keep)
        order = kept + np.arange(len(idx))
        kept += len(idx)
        if counts is not None:
            counts["in_window"] = kept
        if rows is not None:
            idx = idx[(order >= rows[0]) & (order < rows[1])]
        if len(idx):
            yield chunk if len(idx) == chunk.n_requests else chunk.select(idx)
        if (end_s is not None and rel[-1] >= end_s) or (rows is not None and kept >= rows[1]):
            return  # arrivals do not decrease: nothing later can be kept


def _solo_order(chunk: Trace, before: int) -> tuple[np.ndarray, np.ndarray]:
    """Which requests have no session, and each one's rank among those of the stream."""
    solo = chunk.session_ids == NO_ID
    return solo, before + np.cumsum(solo) - 1


def sessions_chunks(stream: Callable[[], Iterable[Trace]], n_sessions: int, seed: int
                    ) -> Iterator[Trace]:
    """:func:`by_sessions` over a stream that ``stream()`` yields afresh for each pass."""
    if n_sessions < 1:
        raise InputError("must be >= 1", where="--sessions")
    ids: set[int] = set()
    n_solo = 0
    for chunk in stream():
        solo = chunk.session_ids == NO_ID
        n_solo += int(solo.sum())
        ids.update(np.unique(chunk.session_ids[~solo]).tolist())
    uniq = np.array(sorted(ids), dtype=np.int64)
    total = n_solo + len(uniq)
    if not total:
        return
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    pick = rng.choice(total, size=min(n_sessions, total), replace=False)
    # sorted unique ids: the solo ones (-1 - row) first, latest row first, then the sessions
    solo_ranks = n_solo - 1 - pick[pick < n_solo]
    chosen = uniq[pick[pick >= n_solo] - n_solo]
    seen_solo = 0
    for chunk in stream():
        solo, rank = _solo_order(chunk, seen_solo)
        seen_solo += int(solo.sum())
        keep = np.where(solo, np.isin(rank, solo_ranks), np.isin(chunk.session_ids, chosen))
        idx = np.flatnonzero(keep)
        if len(idx):
            yield chunk if len(idx) == chunk.n_requests else chunk.select(idx)


def slice_chunks(stream: Callable[[], Iterable[Trace]], *, start_s: float | None = None,
                 end_s: float | None = None, requests: str | None = None,
                 sessions: int | None = None, seed: int = 0) -> Iterator[Trace]:
    """The CLI's slice as a stream: time window, then request range, then session sample
    (each applied to what the previous kept, as the whole-trace functions compose);
    ``stream()`` reads the source afresh (twice for a session sample).  InputError when
    nothing is kept, raised before the writer opens its output."""
    check_window(start_s, end_s)
    rows = None if requests is None else parse_range(requests, None)
    if sessions is not None and sessions < 1:
        raise InputError("must be >= 1", where="--sessions")

    counts = {"in_window": 0}

    def windowed() -> Iterator[Trace]:
        if start_s is None and end_s is None and rows is None:
            return (c for c in stream() if c.n_requests)
        return window_chunks(stream(), start_s, end_s, rows, counts)

    out = windowed() if sessions is None else sessions_chunks(windowed, sessions, seed)
    n = 0
    for chunk in out:
        n += chunk.n_requests
        yield chunk
    if not n:
        if requests is not None:  # "A:" past the window's end: the whole path's error
            parse_range(requests, counts["in_window"])
        raise InputError("the slice holds no requests", where="--requests")
