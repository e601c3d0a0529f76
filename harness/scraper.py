"""A background thread that scrapes every endpoint's /metrics while a replay runs.

A thread, so the replay's event loop stays undisturbed; it keeps the key samples with their
time since the start (``metrics.jsonl``).  A failed scrape is recorded, not raised: a dying
server is the replay's to report.
"""

from __future__ import annotations

import threading
import time

from harness.client import scrape
from harness.metrics import MetricsError, Snapshot

KEY_PREFIXES = ("vllm:prefix_cache", "vllm:external_prefix_cache",
                "vllm:prompt_tokens_cached_by_source", "vllm:kv_cache_usage_perc",
                "vllm:num_preemptions", "vllm:num_requests_running", "vllm:num_requests_waiting")


def key_samples(snap: Snapshot) -> dict:
    """The samples worth keeping from one scrape, keyed by name and labels."""
    return {f"{n}{dict(lab)}": v for (n, lab), v in snap.samples.items() if n.startswith(KEY_PREFIXES)}


class DuringScraper:
    """Scrapes ``endpoints`` every ``interval_s`` until the ``with`` block ends."""

    def __init__(self, endpoints: tuple[str, ...], key: str | None, interval_s: float = 5.0) -> None:
        self.endpoints, self.key, self.interval_s = endpoints, key, interval_s
        self.rows: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-scraper", daemon=True)
        self._t0 = time.perf_counter()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            for e in self.endpoints:
                row = {"endpoint": e, "when": "during",
                       "t_s": round(time.perf_counter() - self._t0, 3)}
                try:
                    row["samples"] = key_samples(scrape(f"{e}/metrics", self.key))
                except MetricsError as exc:
                    row["error"] = str(exc)
                self.rows.append(row)

    def __enter__(self) -> DuringScraper:
        if self.interval_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 30)
