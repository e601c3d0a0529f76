"""Field types and helpers shared by the price-book kinds."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BeforeValidator, Field

from simkv.economics.bill import Bill
from simkv.economics.context import BillContext, CacheRun
from simkv.economics.window import Window
from simkv.units import parse_duration, parse_size


def _duration(v):
    if v is None:
        return None
    seconds = parse_duration(v, where="duration")
    if seconds is None:
        raise ValueError("a finite duration is required here (300, 5m, 1h)")
    return seconds


def _size(v):
    return parse_size(v, where="size")


#: A price: a finite number >= 0.
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: A duration in seconds from ``300``, ``"5m"``, ``"1h"``.
Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
#: A size in bytes from ``"50GB"``, ``"1TiB"``, ``0``.
Size = Annotated[int, BeforeValidator(_size), Field(ge=0)]
TokenCount = Annotated[int, Field(ge=0)]
PositiveTokens = Annotated[int, Field(ge=1)]


def floor_to_unit(tokens: np.ndarray, unit: int, min_tokens: int = 0) -> np.ndarray:
    """Hit tokens rounded down to a provider's unit; zero below its minimum."""
    t = np.asarray(tokens, dtype=np.int64)
    out = (t // max(unit, 1)) * max(unit, 1)
    return np.where(out >= min_tokens, out, 0)


def make_bill(ctx: BillContext, window: Window, *, provider: str, kind: str,
              hit_tokens: np.ndarray, written_tokens: np.ndarray,
              request_usd: dict[str, np.ndarray], baseline_usd: np.ndarray,
              window_usd: dict[str, float] | None = None,
              monthly_usd: dict[str, float] | None = None,
              storage_token_hours: float | None = None, storage_bytes: float | None = None,
              notes: tuple[str, ...] = (), placeholder: bool = False,
              reuse: str = "prefix", baseline_monthly_usd: float = 0.0,
              extra: dict | None = None) -> Bill:
    """A Bill from full-trace per-request arrays: the billed window's requests are priced
    (sums per component and per bootstrap unit); their arrays are kept only when the context
    keeps requests (``BillContext(keep_requests=...)``)."""
    billed = ctx.billed(window)
    rows = billed.rows
    return Bill.priced(
        provider=provider, kind=kind, reuse=reuse, window=window, units=billed.units,
        unit_label=billed.label, unit_index=(billed.inverse, billed.n_units),
        input_tokens=ctx.requests.input_tokens[rows].astype(np.int64, copy=False),
        hit_tokens=np.asarray(hit_tokens)[rows].astype(np.int64, copy=False),
        written_tokens=np.asarray(written_tokens)[rows].astype(np.int64, copy=False),
        request_usd={k: np.asarray(v, dtype=np.float64)[rows] for k, v in request_usd.items()},
        baseline_usd=np.asarray(baseline_usd, dtype=np.float64)[rows],
        window_usd=dict(window_usd or {}), monthly_usd=dict(monthly_usd or {}),
        storage_token_hours=storage_token_hours, storage_bytes=storage_bytes,
        notes=notes, placeholder=placeholder, baseline_monthly_usd=float(baseline_monthly_usd),
        extra=dict(extra or {}), keep_requests=ctx.keep_requests,
    )


def hits_and_writes(ctx: BillContext, run: CacheRun, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(read, written, bypass) tokens per request for a cache that writes every unread token of
    an eligible prompt; requests below the minimum bypass the cache."""
    inp = ctx.requests.input_tokens
    read = np.where(run.eligible, hit, 0)
    written = np.where(run.eligible, inp - read, 0)
    bypass = np.where(run.eligible, 0, inp)
    return read, written, bypass
