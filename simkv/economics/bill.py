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

from simkv.economics.sums import ExactSum, add_by_unit
from simkv.economics.window import Window

MTOK = 1_000_000.0
CI_LEVEL = 0.95


@dataclass(frozen=True, eq=False)
class RequestDetail:
    """The per-request arrays a bill was priced from (billed requests only, in trace order).

    Kept only when the context asks (``BillContext(keep_requests=True)``, the default for the
    library and the tests, which check bills request by request); ``compare`` and ``recommend``
    drop them once a bill is priced, so a bill costs O(units), not O(requests)."""

    units: np.ndarray
    input_tokens: np.ndarray
    hit_tokens: np.ndarray
    written_tokens: np.ndarray
    request_usd: dict[str, np.ndarray]
    baseline_usd: np.ndarray


@dataclass(frozen=True, eq=False)
class UnitSums:
    """Per bootstrap unit (session or time slice, in sorted unit order): the sums the
    resampling needs.  ``total_usd`` adds a request's components in the book's order first."""

    total_usd: np.ndarray
    baseline_usd: np.ndarray
    hit_tokens: np.ndarray
    input_tokens: np.ndarray

    @property
    def n_units(self) -> int:
        return len(self.total_usd)


@dataclass(frozen=True)
class Bill:
    """Charges of one book (one variant: a TTL option, a tier, a medium) on the billed window.

    Holds sums, not requests: per component the window's dollars (``request_sum_usd``, each
    the correctly rounded sum of its per-request dollars), the token totals, and per bootstrap
    unit the sums the intervals resample (``unit_sums``).  Build it with :class:`Pricing`, a
    chunk of requests at a time; ``detail`` keeps the arrays only when asked.  No figure depends on the chunking (``tests/unit/test_bill_sums.py``).
    """

    provider: str
    kind: str
    reuse: str
    window: Window
    unit_label: str
    unit_sums: UnitSums = field(repr=False)
    request_sum_usd: dict[str, float]
    baseline_sum_usd: float
    input_sum_tokens: int
    hit_sum_tokens: int
    written_sum_tokens: int
    billed_requests: int
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
    #: the per-request arrays, when the context keeps them (tests, library use)
    detail: RequestDetail | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ per-request views
    def _detail(self) -> RequestDetail:
        if self.detail is None:
            raise ValueError(f"bill {self.provider!r} kept sums only: build its context with "
                             "keep_requests=True for per-request arrays")
        return self.detail

    @property
    def units(self) -> np.ndarray:
        return self._detail().units

    @property
    def input_tokens(self) -> np.ndarray:
        return self._detail().input_tokens

    @property
    def hit_tokens(self) -> np.ndarray:
        return self._detail().hit_tokens

    @property
    def written_tokens(self) -> np.ndarray:
        return self._detail().written_tokens

    @property
    def request_usd(self) -> dict[str, np.ndarray]:
        return self._detail().request_usd

    @property
    def baseline_usd(self) -> np.ndarray:
        return self._detail().baseline_usd

    # ------------------------------------------------------------------ monthly figures
    def components(self) -> dict[str, float]:
        """Monthly dollars by component (request + window charges scaled, flat ones as is)."""
        f = self.window.month_factor
        out: dict[str, float] = {}
        for name, total in self.request_sum_usd.items():
            out[name] = out.get(name, 0.0) + total * f
        for name, usd in self.window_usd.items():
            out[name] = out.get(name, 0.0) + float(usd) * f
        for name, usd in self.monthly_usd.items():
            out[name] = out.get(name, 0.0) + float(usd)
        return out

    def total_usd(self) -> float:
        return float(sum(self.components().values()))

    def baseline_total_usd(self) -> float:
        return self.baseline_sum_usd * self.window.month_factor + self.baseline_monthly_usd

    def savings_usd(self) -> float:
        return self.baseline_total_usd() - self.total_usd()

    def hit_rate(self) -> float:
        total = float(self.input_sum_tokens)
        return float(self.hit_sum_tokens) / total if total else 0.0

    # ------------------------------------------------------------------ bootstrap
    def bootstrap(self, rng: np.random.Generator, n_boot: int) -> dict[str, list[float]]:
        """95% percentile intervals of hit rate, total and savings (resampling units).

        Each resample is one multinomial draw of counts per unit (the rows ``multinomial(...,
        size=n_boot)`` would give, drawn one at a time from the same generator), and each sum
        is numpy's pairwise sum of counts x per-unit sums along one row: memory is O(units),
        never resamples x units, and the result does not depend on how rows are batched.
        """
        u = self.unit_sums
        n_units = u.n_units
        if n_boot <= 0 or n_units == 0:
            return {}
        pvals = np.full(n_units, 1.0 / n_units)
        per_unit = np.stack([u.total_usd, u.baseline_usd, u.input_tokens, u.hit_tokens])
        sums = np.empty((n_boot, 4))
        for i in range(n_boot):
            sums[i] = (per_unit * rng.multinomial(n_units, pvals)).sum(axis=1)
        f = self.window.month_factor
        fixed = (sum(self.window_usd.values()) * f + sum(self.monthly_usd.values()))
        total = sums[:, 0] * f + fixed
        base = sums[:, 1] * f + self.baseline_monthly_usd
        tin = sums[:, 2]
        hit = np.divide(sums[:, 3], tin, out=np.zeros(n_boot), where=tin > 0)
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
            "tokens_input": float(self.input_sum_tokens) * f,
            "tokens_hit": float(self.hit_sum_tokens) * f,
            "tokens_written": float(self.written_sum_tokens) * f,
            "storage_token_hours": (None if self.storage_token_hours is None
                                    else self.storage_token_hours * f),
            "storage_bytes": self.storage_bytes,
            "components_usd": comps,
            "total_usd": total,
            "no_cache_usd": baseline,
            "savings_usd": baseline - total,
            "savings_share": (baseline - total) / baseline if baseline else 0.0,
            **self.window.as_dict(),
            "billed_requests": self.billed_requests,
            "placeholder": self.placeholder,
            "notes": list(self.notes),
            **self.extra,
        }
        if rng is not None and n_boot > 0:
            out["ci95"] = self.bootstrap(rng, n_boot)
            out["ci_resampling"] = f"{n_boot} resamples over {self.unit_label}"
        return out


class Pricing:
    """A bill's sums, accumulated over the billed requests a chunk at a time, in trace order.

    Component totals are :class:`~simkv.economics.sums.ExactSum` (chunking-independent); the
    per-unit sums add each request to its unit in order, as one ``np.bincount`` over the whole
    window would (:func:`~simkv.economics.sums.add_by_unit`); token sums are exact integers.
    With ``keep_requests`` the chunks' arrays are kept too (``Bill.detail``).
    """

    def __init__(self, n_units: int, keep_requests: bool = False) -> None:
        self.n_units = int(n_units)
        self._comp: dict[str, ExactSum] = {}
        self._base = ExactSum()
        self._by_unit = np.zeros((4, self.n_units))  # total, baseline, hit, input
        self._tokens = [0, 0, 0]  # input, hit, written
        self._n = 0
        self._keep: list[tuple] | None = [] if keep_requests else None

    def add(self, inverse: np.ndarray, *, input_tokens: np.ndarray, hit_tokens: np.ndarray,
            written_tokens: np.ndarray, request_usd: dict[str, np.ndarray],
            baseline_usd: np.ndarray, units: np.ndarray | None = None) -> None:
        """One chunk of billed requests: their unit indices and per-request figures."""
        inp = np.asarray(input_tokens).astype(np.int64, copy=False)
        hit = np.asarray(hit_tokens).astype(np.int64, copy=False)
        wr = np.asarray(written_tokens).astype(np.int64, copy=False)
        usd_ = {k: np.asarray(v, dtype=np.float64) for k, v in request_usd.items()}
        base = np.asarray(baseline_usd, dtype=np.float64)
        total = np.zeros(len(inp))
        for name, arr in usd_.items():
            self._comp.setdefault(name, ExactSum()).add(arr)
            total = total + arr
        self._base.add(base)
        for row, a in enumerate((total, base, hit, inp)):
            add_by_unit(self._by_unit[row], inverse, a)
        for i, a in enumerate((inp, hit, wr)):
            self._tokens[i] += int(np.sum(a))
        self._n += len(inp)
        if self._keep is not None:
            self._keep.append((units, inp, hit, wr, usd_, base))

    def bill(self, **kw) -> Bill:
        """The bill of everything added (``kw``: :class:`Bill`'s other fields)."""
        t, b, h, i = self._by_unit
        detail = None
        if self._keep is not None:
            def cat(k):
                parts = [p[k] for p in self._keep]
                return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            names = list(self._comp)
            detail = RequestDetail(units=cat(0), input_tokens=cat(1), hit_tokens=cat(2),
                                   written_tokens=cat(3),
                                   request_usd={k: np.concatenate([p[4][k] for p in self._keep])
                                                for k in names},
                                   baseline_usd=np.concatenate([p[5] for p in self._keep])
                                   if self._keep else np.zeros(0))
        return Bill(unit_sums=UnitSums(total_usd=t, baseline_usd=b, hit_tokens=h, input_tokens=i),
                    billed_requests=self._n,
                    request_sum_usd={k: v.value for k, v in self._comp.items()},
                    baseline_sum_usd=self._base.value, input_sum_tokens=self._tokens[0],
                    hit_sum_tokens=self._tokens[1], written_sum_tokens=self._tokens[2],
                    detail=detail, **kw)


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
