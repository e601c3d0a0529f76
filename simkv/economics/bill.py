"""A bill: one price book's charges on a trace, extrapolated to a month, with bootstrap CIs.

Charges come in three shapes, so that the components always sum to the total:

- per-request dollars (reads, writes, uncached input, recompute) over the billed window,
  scaled by the window's month factor;
- window-level dollars (storage token-hours) scaled by the same factor;
- flat monthly dollars (a subscription's price, provisioned storage), not scaled.

Confidence intervals resample the billed requests by session (or by time slice when the trace
has no sessions) with the per-request outcomes held fixed: they describe sampling noise in the
traffic mix, not a re-simulation of the cache.  Window-level and flat charges are held fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simkv.economics.window import Window

MTOK = 1_000_000.0
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Bill:
    """Charges of one book (one variant: a TTL option, a tier, a medium) on the billed window."""

    provider: str
    kind: str
    reuse: str
    window: Window
    units: np.ndarray = field(repr=False)
    unit_label: str
    input_tokens: np.ndarray = field(repr=False)
    hit_tokens: np.ndarray = field(repr=False)
    written_tokens: np.ndarray = field(repr=False)
    request_usd: dict[str, np.ndarray] = field(repr=False)
    baseline_usd: np.ndarray = field(repr=False)
    window_usd: dict[str, float] = field(default_factory=dict)
    monthly_usd: dict[str, float] = field(default_factory=dict)
    storage_token_hours: float | None = None
    storage_bytes: float | None = None
    notes: tuple[str, ...] = ()
    placeholder: bool = False
    #: a flat monthly no-cache cost (a fleet sized without the cache), added to ``baseline_usd``
    baseline_monthly_usd: float = 0.0
    #: named figures of the bill's model that are not dollars (replicas, load seconds...)
    extra: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ monthly figures
    def components(self) -> dict[str, float]:
        """Monthly dollars by component (request + window charges scaled, flat ones as is)."""
        f = self.window.month_factor
        out: dict[str, float] = {}
        for name, arr in self.request_usd.items():
            out[name] = out.get(name, 0.0) + float(np.sum(arr)) * f
        for name, usd in self.window_usd.items():
            out[name] = out.get(name, 0.0) + float(usd) * f
        for name, usd in self.monthly_usd.items():
            out[name] = out.get(name, 0.0) + float(usd)
        return out

    def total_usd(self) -> float:
        return float(sum(self.components().values()))

    def baseline_total_usd(self) -> float:
        return (float(np.sum(self.baseline_usd)) * self.window.month_factor
                + self.baseline_monthly_usd)

    def savings_usd(self) -> float:
        return self.baseline_total_usd() - self.total_usd()

    def hit_rate(self) -> float:
        total = float(np.sum(self.input_tokens))
        return float(np.sum(self.hit_tokens)) / total if total else 0.0

    # ------------------------------------------------------------------ bootstrap
    def bootstrap(self, rng: np.random.Generator, n_boot: int) -> dict[str, list[float]]:
        """95% percentile intervals of hit rate, total and savings (resampling units)."""
        if n_boot <= 0 or len(self.units) == 0:
            return {}
        _, inverse = np.unique(self.units, return_inverse=True)
        n_units = int(inverse.max()) + 1
        per_req_total = np.zeros(len(self.units))
        for arr in self.request_usd.values():
            per_req_total = per_req_total + arr

        def by_unit(a):
            return np.bincount(inverse, weights=np.asarray(a, dtype=np.float64), minlength=n_units)

        u_total, u_base = by_unit(per_req_total), by_unit(self.baseline_usd)
        u_hit, u_in = by_unit(self.hit_tokens), by_unit(self.input_tokens)
        counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot)
        f = self.window.month_factor
        fixed = (sum(self.window_usd.values()) * f + sum(self.monthly_usd.values()))
        total = counts @ u_total * f + fixed
        base = counts @ u_base * f + self.baseline_monthly_usd
        tin = counts @ u_in
        hit = np.divide(counts @ u_hit, tin, out=np.zeros(n_boot), where=tin > 0)
        lo, hi = 100 * (1 - CI_LEVEL) / 2, 100 * (1 + CI_LEVEL) / 2

        def ci(a):
            return [float(np.percentile(a, lo)), float(np.percentile(a, hi))]

        return {"hit_rate": ci(hit), "total_usd": ci(total), "savings_usd": ci(base - total)}

    def summary(self, rng: np.random.Generator | None = None, n_boot: int = 0) -> dict:
        """The bill as one flat-ish dict (monthly figures)."""
        f = self.window.month_factor
        comps = self.components()
        total = float(sum(comps.values()))
        baseline = self.baseline_total_usd()
        out = {
            "provider": self.provider,
            "kind": self.kind,
            "reuse": self.reuse,
            "hit_rate": self.hit_rate(),
            "tokens_input": float(np.sum(self.input_tokens)) * f,
            "tokens_hit": float(np.sum(self.hit_tokens)) * f,
            "tokens_written": float(np.sum(self.written_tokens)) * f,
            "storage_token_hours": (None if self.storage_token_hours is None
                                    else self.storage_token_hours * f),
            "storage_bytes": self.storage_bytes,
            "components_usd": comps,
            "total_usd": total,
            "no_cache_usd": baseline,
            "savings_usd": baseline - total,
            "savings_share": (baseline - total) / baseline if baseline else 0.0,
            **self.window.as_dict(),
            "billed_requests": int(len(self.input_tokens)),
            "placeholder": self.placeholder,
            "notes": list(self.notes),
            **self.extra,
        }
        if rng is not None and n_boot > 0:
            out["ci95"] = self.bootstrap(rng, n_boot)
            out["ci_resampling"] = f"{n_boot} resamples over {self.unit_label}"
        return out


def usd(tokens: np.ndarray, usd_per_mtok: float) -> np.ndarray:
    """Dollars for token counts at a $/MTok price."""
    return np.asarray(tokens, dtype=np.float64) * (float(usd_per_mtok) / MTOK)


@dataclass(frozen=True)
class Unavailable:
    """A book that cannot bill this trace (e.g. no prefill throughput known), and why."""

    provider: str
    kind: str
    reason: str

    def summary(self) -> dict:
        return {"provider": self.provider, "kind": self.kind, "available": False,
                "total_usd": None, "savings_usd": None, "notes": [self.reason]}
