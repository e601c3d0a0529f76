"""When LMCache's L1 eviction loop woke during a replay, on the replay's clock.

The loop (``L1EvictionController.eviction_loop``) sleeps one second, checks usage, evicts, and
counts each wake in ``lmcache_mp_l1_eviction_loop_ticks_total``.  Its phase was set when the
server started, and on a busy machine its wakes drift (the sleep returns late), so the harness
watches it: a thread scrapes the counter every ``interval_s`` during the replay and dates each
increase at the midpoint of the two scrapes around it (within ``interval_s / 2`` plus one
scrape's latency).  Only *when* the loop woke is taken from the server; whether a wake evicted,
and what, is the model's to predict (:mod:`simkv.cache.lmcache_policy`).
"""

from __future__ import annotations

import threading
import time

from harness.client import scrape
from harness.metrics import MetricsError

TICKS = "lmcache_mp_l1_eviction_loop_ticks_total"


def _ticks(url: str) -> float | None:
    try:
        return scrape(url).total(TICKS)
    except MetricsError:
        return None


class TickWatcher:
    """``with TickWatcher(url) as w: replay()``; then ``w.wakes_perf_s`` (perf_counter times)."""

    def __init__(self, url: str, interval_s: float = 0.05) -> None:
        self.url, self.interval_s = url, interval_s
        self.wakes_perf_s: list[float] = []
        self.seen = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lmcache-ticks", daemon=True)

    def _loop(self) -> None:
        last_v, last_t = _ticks(self.url), time.perf_counter()
        self.seen = last_v is not None
        while not self._stop.wait(self.interval_s):
            v = _ticks(self.url)
            t = time.perf_counter()
            if v is not None and last_v is not None and v > last_v:
                mid = (last_t + t) / 2
                self.wakes_perf_s.extend([mid] * int(v - last_v))
            if v is not None:
                last_v, last_t = v, t

    def __enter__(self) -> TickWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(self.interval_s * 2)  # one more look after the last request
        self._stop.set()
        self._thread.join(timeout=30)

    def wakes_on(self, t0_perf_s: float) -> tuple[float, ...] | None:
        """The wakes on a clock whose zero is ``t0_perf_s`` (None if never scraped)."""
        return tuple(w - t0_perf_s for w in self.wakes_perf_s) if self.seen else None
