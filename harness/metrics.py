"""Prometheus scrapes of vLLM and LMCache, parsed with prometheus_client, and counter deltas.

Hit rates come from counter *deltas* between a scrape before and a scrape after the replay
(never from a server's own gauge), so earlier traffic on the same server does not count.
A metric the comparison needs but the server does not export stops the run with a message
naming it (a different vLLM version, or metrics disabled).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from simkv.errors import InputError

VLLM_REQUIRED = ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
                 "vllm:cache_config_info", "vllm:kv_cache_usage_perc")
VLLM_CONNECTOR_REQUIRED = ("vllm:external_prefix_cache_queries_total",
                           "vllm:external_prefix_cache_hits_total")
LMCACHE_REQUIRED = ("lmcache_mp_lookup_requested_tokens_total",
                    "lmcache_mp_lookup_hit_tokens_total")


class MetricsError(InputError):
    """An expected metric is missing or a scrape failed (one line naming the URL)."""


@dataclass(frozen=True)
class Snapshot:
    """One scrape: every sample as (name, sorted labels) -> value."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, source: str = "metrics") -> Snapshot:
        """Parse Prometheus text; anything else (HTML, JSON, garbage) is a MetricsError."""
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        try:
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
        except (ValueError, TypeError, IndexError, KeyError) as exc:  # the parser's errors
            first = (str(exc).splitlines() or [""])[0][:120]
            raise MetricsError(f"{source} is not Prometheus text ({type(exc).__name__}: "
                               f"{first})") from None
        if not out and text.strip():
            raise MetricsError(f"{source} is not Prometheus text (no samples in "
                               f"{len(text)} characters)")
        return cls(out)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def total(self, name: str, **labels: str) -> float | None:
        """Sum of the samples named ``name`` whose labels include ``labels`` (None if absent)."""
        values = [v for (n, lab), v in self.samples.items()
                  if n == name and all(dict(lab).get(k) == val for k, val in labels.items())]
        return sum(values) if values else None

    def labels_of(self, name: str) -> dict[str, str] | None:
        for (n, lab), _ in self.samples.items():
            if n == name:
                return dict(lab)
        return None

    def require(self, names, source: str) -> None:
        missing = [n for n in names if n not in self.names()]
        if missing:
            raise MetricsError(f"{source} does not export {', '.join(missing)}; the comparison "
                               "needs them (is this a vLLM >= 0.11 / LMCache multi-process "
                               "server with metrics enabled?)")


def served_model(url: str, text: str) -> tuple[str, int | None]:
    """(model id, max_model_len) from an OpenAI ``/v1/models`` answer; else a MetricsError."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise MetricsError(f"{url} did not answer with JSON") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list) or not data:
        raise MetricsError(f"{url} lists no models (no non-empty 'data' list)")
    first = data[0]
    model = first.get("id") if isinstance(first, dict) else None
    if not isinstance(model, str) or not model:
        raise MetricsError(f"{url}: the first model entry has no 'id'")
    max_len = first.get("max_model_len")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len <= 0:
        max_len = None
    return model, max_len


def delta(before: Snapshot, after: Snapshot, name: str, **labels: str) -> float:
    """Counter increase of ``name`` between two scrapes (0 when absent in both)."""
    a = after.total(name, **labels)
    b = before.total(name, **labels)
    return (a or 0.0) - (b or 0.0)


@dataclass(frozen=True)
class CacheInfo:
    """The engine's real cache configuration, from ``vllm:cache_config_info``."""

    block_size: int
    num_gpu_blocks: int
    kv_cache_memory_bytes: int | None

    @property
    def usable_blocks(self) -> int:
        """Blocks the prefix cache can use: vLLM takes one as its null block."""
        return self.num_gpu_blocks - 1


def cache_info(snap: Snapshot) -> CacheInfo:
    labels = snap.labels_of("vllm:cache_config_info")
    if labels is None:
        raise MetricsError("vllm does not export vllm:cache_config_info")

    def num(key: str) -> int | None:
        v = labels.get(key)
        try:
            return int(float(v)) if v not in (None, "None", "") else None
        except ValueError:
            return None

    bs, nb = num("block_size"), num("num_gpu_blocks")
    if bs is None or nb is None:
        raise MetricsError("vllm:cache_config_info lacks block_size or num_gpu_blocks")
    return CacheInfo(bs, nb, num("kv_cache_memory_bytes"))


def cache_deltas(before: Snapshot, after: Snapshot, *, connector: bool = False) -> dict:
    """The prefix-cache counters the comparison uses, as deltas over the replay."""
    out = {
        "prefix_cache_queries_tokens": delta(before, after, "vllm:prefix_cache_queries_total"),
        "prefix_cache_hits_tokens": delta(before, after, "vllm:prefix_cache_hits_total"),
        "external_prefix_cache_queries_tokens": delta(
            before, after, "vllm:external_prefix_cache_queries_total"),
        "external_prefix_cache_hits_tokens": delta(
            before, after, "vllm:external_prefix_cache_hits_total"),
        "kv_cache_usage_perc": after.total("vllm:kv_cache_usage_perc"),
    }
    for (name, lab), _ in after.samples.items():
        if name == "vllm:prompt_tokens_cached_by_source_total":
            src = dict(lab).get("source", "unknown")
            out[f"cached_by_source_{src}_tokens"] = delta(before, after, name, source=src)
    q, h = out["prefix_cache_queries_tokens"], out["prefix_cache_hits_tokens"]
    out["prefix_hit_ratio"] = h / q if q else None
    eq, eh = out["external_prefix_cache_queries_tokens"], out["external_prefix_cache_hits_tokens"]
    out["external_hit_ratio"] = (eh / eq if eq else None) if connector else None
    return out


def lmcache_deltas(before: Snapshot, after: Snapshot) -> dict:
    """Every ``lmcache_mp_*`` counter's increase, histograms as count / sum deltas, and the
    gauges' final values.  A histogram's ``_bucket`` series are cumulative per ``le`` bound:
    they are neither counters to add up nor gauges, so they are left out here."""
    out = {}
    for (name, _lab), _ in after.samples.items():
        if not name.startswith("lmcache_mp_") or name in out:
            continue
        if name.endswith(("_total", "_count", "_sum")):
            out[name] = delta(before, after, name)
        elif not name.endswith(("_created", "_bucket")):
            out[name] = after.total(name)
    return out


#: vLLM's server-side timing histograms compared beside the client's
VLLM_HISTOGRAMS = ("vllm:time_to_first_token_seconds", "vllm:request_queue_time_seconds",
                   "vllm:request_prefill_time_seconds")


def _bucket_deltas(before: Snapshot, after: Snapshot, name: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count increase) per ``le`` bucket, ascending."""
    out = {}
    for (n, lab), v in after.samples.items():
        if n != f"{name}_bucket":
            continue
        labels = dict(lab)
        le = float(labels["le"])
        out[le] = out.get(le, 0.0) + v - (before.samples.get((n, lab)) or 0.0)
    return sorted(out.items())


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket holding rank ``q x count``."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lo_b, lo_c = 0.0, 0.0
    for hi_b, hi_c in buckets:
        if hi_c >= rank:
            if hi_b == float("inf"):
                return lo_b
            width = hi_c - lo_c
            return lo_b + (hi_b - lo_b) * ((rank - lo_c) / width if width > 0 else 1.0)
        lo_b, lo_c = hi_b, hi_c
    return lo_b


def histogram_deltas(before: Snapshot, after: Snapshot,
                     names: tuple[str, ...] = VLLM_HISTOGRAMS) -> dict:
    """Per histogram over the replay: count, sum, mean, and p50 / p90 from bucket deltas.

    A quantile is Prometheus' interpolation capped at ``mean / (1 - q)``: by Markov's
    inequality no nonnegative variable's q-quantile exceeds that, and vLLM's coarse queue and
    prefill buckets (first bound 0.3 s) otherwise report 0.15 s / 0.27 s for times whose mean
    is a few milliseconds."""
    out = {}
    for name in names:
        count = delta(before, after, f"{name}_count")
        total = delta(before, after, f"{name}_sum")
        buckets = _bucket_deltas(before, after, name)
        mean = total / count if count else None
        q50, q90 = histogram_quantile(buckets, 0.5), histogram_quantile(buckets, 0.9)
        if mean is not None and mean >= 0:
            q50 = None if q50 is None else min(q50, mean / 0.5)
            q90 = None if q90 is None else min(q90, mean / 0.1)
        out[name.split(":")[-1]] = {"count": count, "sum_s": total, "mean_s": mean,
                                    "p50_s": q50, "p90_s": q90}
    return out
