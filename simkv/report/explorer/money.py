"""The explorer's money model: one monthly bill from a hit rate, a token volume and two prices.

Why a separate, tiny model: the page recomputes it in JavaScript for any point the reader picks,
so it must be a formula a reader can check by hand.  For a persistent bucket (cached reads free,
misses re-encoded at the input price) the month is::

    no_cache_usd = V * p / 1e6
    bill_usd     = F + V * (1 - h) * p / 1e6
    net_usd      = no_cache_usd - bill_usd = V * h * p / 1e6 - F
    break_even_h = F / (V * p / 1e6)

with V the input tokens per month (the run's window extrapolated linearly to a month), h the
prefix-token hit rate, p the recompute price in $ per million input tokens and F the fee of the
bucket per month (the smallest tier that holds the capacity, or a price the reader types).
``simkv/report/templates/explorer.js`` implements the same lines; the browser test checks the
two agree to the cent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class TierPrice:
    """A capacity tier of a subscription book (bytes of KV, $ per month)."""

    name: str
    capacity_bytes: float
    usd_per_month: float


@dataclass(frozen=True)
class Month:
    """One point's month: what it bills with and without the cache."""

    no_cache_usd: float
    bill_usd: float
    net_savings_usd: float
    break_even_hit_rate: float | None


def tokens_per_month(input_tokens: float, window_s: float, days_per_month: float) -> float:
    """Linear extrapolation of the window's input tokens to a month of ``days_per_month``."""
    if window_s <= 0:
        return float(input_tokens)
    return float(input_tokens) * days_per_month * SECONDS_PER_DAY / float(window_s)


def month(tokens_month: float, hit_rate: float, usd_per_mtok: float, fee_usd: float) -> Month:
    """The formulas in the module docstring."""
    base = tokens_month * usd_per_mtok / 1e6
    bill = fee_usd + tokens_month * (1.0 - hit_rate) * usd_per_mtok / 1e6
    return Month(no_cache_usd=base, bill_usd=bill, net_savings_usd=base - bill,
                 break_even_hit_rate=(fee_usd / base) if base > 0 else None)


def tier_for(tiers: Sequence[TierPrice], capacity_bytes: float | None) -> TierPrice | None:
    """The cheapest tier holding ``capacity_bytes`` (``None`` = unlimited: none holds it)."""
    if capacity_bytes is None or (isinstance(capacity_bytes, float) and math.isnan(capacity_bytes)):
        return None
    fits = [t for t in tiers if t.capacity_bytes >= capacity_bytes]
    return min(fits, key=lambda t: (t.usd_per_month, t.capacity_bytes)) if fits else None
