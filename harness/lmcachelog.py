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
- ``MP lookup/prefetch end: session=S found_count=F``: the chunks its lookup found (used only
  to tell whose a store is, never as a predicted hit);
- ``vLLM block allocation: req_id=S``: vLLM scheduled its prefill;
- ``SM write reserved: K succeeded, F failed``: a store's reservation of K + F chunks, no
  session named: credited to a request that was given blocks and has not ended or stored yet
  and expects that many chunks (:func:`_store_owner`); with no candidate the request keeps
  the client's time (send + TTFT on this clock);
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


def server_times(path: Path, records: list[dict], t0_wall_s: float, end_wall_s: float,
                 chunk_tokens: int = 256) -> ServerTimes:
    """The replay's requests (``records`` with ``response_id``) on the server's clock.

    ``t0_wall_s``: the replay clock's zero in wall time; only lines from then to ``end_wall_s``
    (plus a second, for the last request's end) are read.
    """
    ev = _events(path, t0_wall_s, end_wall_s + 1.0)
    prompt_of = {r["response_id"]: int(r.get("prompt_tokens") or 0) for r in records
                 if r.get("status") == "ok" and r.get("response_id")}
    lookup: dict[str, float] = {}
    found: dict[str, int] = {}
    alloc: dict[str, float] = {}
    store: dict[str, float] = {}
    end: dict[str, float] = {}
    wakes: list[float] = []
    for t, msg in ev:
        if msg.startswith("MP lookup/prefetch start: session="):
            lookup.setdefault(_word_after(msg, "session="), t)
        elif msg.startswith("MP lookup/prefetch end: session=") and "found_count=" in msg:
            found.setdefault(_word_after(msg, "session="), int(_word_after(msg, "found_count=")))
        elif msg.startswith("vLLM block allocation: req_id="):
            alloc.setdefault(_word_after(msg, "req_id="), t)
        elif msg.startswith("SM write reserved:"):
            words = msg.split()
            try:
                n = int(words[3]) + int(words[5])  # "k succeeded, f failed": chunks attempted
            except (IndexError, ValueError):
                continue
            s = _store_owner(t, n, lookup, found, alloc, store, end, prompt_of, chunk_tokens)
            if s is not None:
                store[s] = t
        elif msg.startswith("Removed session for request_id="):
            end.setdefault(_word_after(msg, "request_id="), t)
        elif msg.startswith("L1 memory usage") and "watermark" in msg:
            wakes.append(t - t0_wall_s)
    by_id = {_head(s): s for s in reversed(list(lookup))}  # the first session of an id
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


def _head(session: str) -> str:
    """vLLM's ``<completion id>-<index>-<suffix>`` -> the completion id the client saw."""
    return session.rsplit("-", 2)[0] if session.count("-") >= 2 else session


def _store_owner(t: float, n: int, lookup, found, alloc, store, end, prompt_of,
                 chunk_tokens: int) -> str | None:
    """Whose store a reservation of ``n`` chunks at ``t`` was: the sessions looked up, given
    blocks by vLLM (its prefill was scheduled), not ended and not yet credited with a store,
    that expect to store chunks; of those, the first given blocks whose expected count
    (full chunks of the prompt minus the chunks its lookup found) is ``n``, else the first.
    One in flight there is one candidate; with several the order of vLLM's steps decides."""
    cands = []
    for s, t_alloc in alloc.items():
        if s in store or s in end or s not in lookup or t_alloc > t:
            continue
        expect = prompt_of.get(_head(s), 0) // chunk_tokens - found.get(s, 0)
        if expect > 0:
            cands.append((t_alloc, expect, s))
    if not cands:
        return None
    cands.sort()
    for _, expect, s in cands:
        if expect == n:
            return s
    return cands[0][2]
