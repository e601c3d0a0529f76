"""When the LMCache server looked up, stored, ended each request and woke its eviction loop,
read from its own log (LMCache 0.5.6 at ``LMCACHE_LOG_LEVEL=DEBUG``).

Why: on this loaded CPU machine the client's clock is a poor proxy for the server's.  The
model's L1 (:mod:`simkv.cache.lmcache_policy`) decides *what* each wake evicts from the order of
lookups, stores and request ends around it, and a request takes 0.1-0.5 s here, so a wake
often falls inside one.  Measured on four one-in-flight replays (2026-12-02, load 10-14): the
server's lookup came 0.04 s before to 0.4 s after the client's send, and the loop's wakes as
the metrics watcher (:mod:`harness.ticks`) dated them were up to 0.29 s off the log's.  With
the log's times the model's trigger decisions, evictions, stores and hits matched the
server's on all four.  Only *when* things happened is taken from the log; what hit, what was
stored and what a wake evicted stay the model's prediction.

Lines used (timestamps in milliseconds, the server's local wall clock):

- ``MP lookup/prefetch start: session=S`` (the first one of each session): the lookup;
- ``SM write reserved: ...``: a store's reservation, credited to the one session then open
  (between its lookup and its end); with several open it cannot be told apart, and the
  request's store keeps the client's time (send + TTFT on this clock);
- ``Removed session for request_id=S``: the request ended (``end_session``'s touch);
- ``L1 memory usage U below|above watermark W``: one eviction-loop wake.

A session ``S`` is vLLM's request id, ``<completion id>-<index>-<suffix>``; the completion id
is the ``id`` of the streamed response (``response_id`` in the records), which ties sessions to
the replay's requests whatever order they reached the server in.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from simkv.errors import InputError

_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] LMCache \w+:\s*(.*)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class ServerTimes:
    """Per request ``(lookup_s, store_s, end_s)`` and the loop's wakes, on the replay's clock."""

    times: dict[int, tuple[float, float, float]]
    wakes_s: tuple[float, ...]
    matched: int  # requests whose session was found
    stores_from_log: int  # of those, stores credited from the log (the rest: the client's)

    def as_dict(self) -> dict:
        return {"matched_requests": self.matched, "stores_from_log": self.stores_from_log,
                "wakes": len(self.wakes_s)}


def _events(path: Path, t_from: float, t_to: float) -> list[tuple[float, str]]:
    out = []
    try:
        fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror or exc})", source=path,
                         where="--lmcache-log") from None
    with fh:
        for raw in fh:
            m = _LINE.search(_ANSI.sub("", raw))
            if not m:
                continue
            t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if t_from <= t <= t_to:
                out.append((t, m.group(2)))
    return out


def _word_after(msg: str, tag: str) -> str:
    return msg.split(tag, 1)[1].split()[0]


def server_times(path: Path, records: list[dict], t0_wall_s: float,
                 end_wall_s: float) -> ServerTimes:
    """The replay's requests (``records`` with ``response_id``) on the server's clock.

    ``t0_wall_s``: the replay clock's zero in wall time; only lines from then to ``end_wall_s``
    (plus a second, for the last request's end) are read.
    """
    ev = _events(path, t0_wall_s, end_wall_s + 1.0)
    lookup: dict[str, float] = {}
    store: dict[str, float] = {}
    end: dict[str, float] = {}
    wakes: list[float] = []
    open_: set[str] = set()
    for t, msg in ev:
        if msg.startswith("MP lookup/prefetch start: session="):
            s = _word_after(msg, "session=")
            if s not in lookup:
                lookup[s] = t
                open_.add(s)
        elif msg.startswith("SM write reserved"):
            if len(open_) == 1:
                s = next(iter(open_))
                store.setdefault(s, t)
        elif msg.startswith("Removed session for request_id="):
            s = _word_after(msg, "request_id=")
            end.setdefault(s, t)
            open_.discard(s)
        elif msg.startswith("L1 memory usage") and "watermark" in msg:
            wakes.append(t - t0_wall_s)
    by_id: dict[str, str] = {}
    for s in lookup:
        head = s.rsplit("-", 2)[0] if s.count("-") >= 2 else s
        by_id.setdefault(head, s)
    times: dict[int, tuple[float, float, float]] = {}
    from_log = 0
    for r in records:
        rid = r.get("response_id")
        if r.get("status") != "ok" or not rid or rid not in by_id:
            continue
        s = by_id[rid]
        look = lookup[s] - t0_wall_s
        if s in store:
            st = store[s] - t0_wall_s
            from_log += 1
        else:
            st = float(r["sent_s"]) + float(r.get("ttft_s") or 0.0)
        en = end[s] - t0_wall_s if s in end else float(r["sent_s"]) + float(r.get("e2e_s") or 0.0)
        st = max(st, look)
        times[int(r["request"])] = (look, st, max(en, st))
    return ServerTimes(times, tuple(wakes), len(times), from_log)
