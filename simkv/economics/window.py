"""Warm-up and extrapolation: which part of a trace is billed, and how it scales to a month.

A trace starts with a cold cache, so its first minutes overstate misses.  We discard a warm-up
and scale the rest of the window to a month (``days_per_month x 86,400 s`` divided by the billed
window's length).  The default rule (``auto``) discards the first tenth of the window, or until
the cache first fills (its first eviction) when that comes later, capped at half the window so
that at least half of the trace is billed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from simkv.errors import InputError
from simkv.units import parse_duration

SECONDS_PER_DAY = 86_400.0
AUTO_FRACTION = 0.10
AUTO_CAP_FRACTION = 0.50


@dataclass(frozen=True)
class WarmupSpec:
    """``auto``, a fraction of the window (``"10%"``) or a duration (``"5m"``, ``"0"``)."""

    mode: str = "auto"
    value: float = 0.0

    def describe(self) -> str:
        if self.mode == "auto":
            return (f"auto (first {AUTO_FRACTION:.0%} of the window, or until the cache first "
                    f"fills, at most {AUTO_CAP_FRACTION:.0%})")
        if self.mode == "fraction":
            return f"first {self.value:.1%} of the window"
        return f"first {self.value:g} s"


def parse_warmup(text: str | None, *, where: str = "--warmup") -> WarmupSpec:
    """``auto`` | ``N%`` | a duration (``0`` for none)."""
    if text is None or str(text).strip().lower() == "auto":
        return WarmupSpec()
    s = str(text).strip()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*%", s)
    if m:
        frac = float(m.group(1)) / 100.0
        if not 0.0 <= frac < 1.0:
            raise InputError("a warm-up fraction must be within [0%, 100%)", where=where)
        return WarmupSpec("fraction", frac)
    if s in ("0", "0s", "none"):
        return WarmupSpec("duration", 0.0)
    seconds = parse_duration(s, where=where)
    if seconds is None:
        raise InputError("a warm-up must be finite (auto, 10%, 300, 5m, 0)", where=where)
    return WarmupSpec("duration", float(seconds))


@dataclass(frozen=True)
class Window:
    """The billed part of a trace and its scale factor to a month."""

    start_s: float
    end_s: float
    warmup_s: float
    month_factor: float
    rule: str

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s - self.warmup_s

    def measured(self, arrival_s: np.ndarray) -> np.ndarray:
        """Rows (indices) of requests inside the billed window."""
        return np.flatnonzero(arrival_s >= self.start_s + self.warmup_s)

    def as_dict(self) -> dict:
        return {"warmup_s": self.warmup_s, "billed_window_s": self.length_s,
                "month_factor": self.month_factor, "warmup_rule": self.rule}


def make_window(arrival_s: np.ndarray, spec: WarmupSpec, days_per_month: float,
                first_fill_s: float | None = None) -> Window:
    """The billed window for a trace; ``first_fill_s`` is the cache's first eviction time."""
    n = len(arrival_s)
    return make_window_span(float(arrival_s[0]) if n else 0.0,
                            float(arrival_s[-1]) if n else 0.0, n, spec, days_per_month,
                            first_fill_s)


def make_window_span(t0: float, t1: float, n_requests: int, spec: WarmupSpec,
                     days_per_month: float, first_fill_s: float | None = None) -> Window:
    """:func:`make_window` from the first and last arrival and the number of requests."""
    if n_requests < 2:
        raise InputError("the trace needs at least two requests to extrapolate to a month",
                         where="--trace")
    duration = t1 - t0
    if spec.mode == "auto":
        warm = AUTO_FRACTION * duration
        rule = f"auto: first {AUTO_FRACTION:.0%} of the window ({warm:.1f} s)"
        if first_fill_s is not None and first_fill_s - t0 > warm:
            warm = min(first_fill_s - t0, AUTO_CAP_FRACTION * duration)
            rule = (f"auto: until the cache first filled ({warm:.1f} s)"
                    if warm < AUTO_CAP_FRACTION * duration else
                    f"auto: cache still filling at mid-window; first {AUTO_CAP_FRACTION:.0%} "
                    f"discarded ({warm:.1f} s)")
    elif spec.mode == "fraction":
        warm = spec.value * duration
        rule = f"first {spec.value:.1%} of the window ({warm:.1f} s)"
    else:
        warm = spec.value
        rule = f"first {warm:g} s"
    length = duration - warm
    if not length > 0:
        raise InputError(f"the warm-up ({warm:g} s) leaves nothing of the {duration:g} s trace "
                         "to bill", where="--warmup")
    return Window(start_s=t0, end_s=t1, warmup_s=float(warm),
                  month_factor=days_per_month * SECONDS_PER_DAY / length, rule=rule)
