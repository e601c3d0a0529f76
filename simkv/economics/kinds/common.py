"""Field types and helpers shared by the price-book kinds."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import BeforeValidator, Field

from simkv.economics.bill import Bill, Pricing
from simkv.economics.context import BillContext
from simkv.economics.runs import RunChunk, View
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


@dataclass(frozen=True, eq=False)
class Charges:
    """One chunk's per-request figures of a bill (arrays over the chunk's requests)."""

    hit_tokens: np.ndarray
    written_tokens: np.ndarray
    request_usd: dict[str, np.ndarray]
    baseline_usd: np.ndarray

    def rows(self, lo: int) -> dict:
        """The figures of the chunk's requests from ``lo`` on, as :meth:`Pricing.add` takes."""
        return {"hit_tokens": np.asarray(self.hit_tokens)[lo:],
                "written_tokens": np.asarray(self.written_tokens)[lo:],
                "request_usd": {k: np.asarray(v)[lo:] for k, v in self.request_usd.items()},
                "baseline_usd": np.asarray(self.baseline_usd)[lo:]}


def make_bill(ctx: BillContext, window: Window, *, provider: str, kind: str,
              price: Callable[[View], Charges], blocks: bool = False,
              block_columns: tuple[str, ...] | None = None,
              window_usd: dict[str, float] | None = None,
              monthly_usd: dict[str, float] | None = None,
              storage_token_hours: float | None = None, storage_bytes: float | None = None,
              notes: tuple[str, ...] = (), placeholder: bool = False,
              reuse: str = "prefix", baseline_monthly_usd: float = 0.0,
              extra: dict | None = None) -> Bill:
    """A Bill priced a chunk at a time: ``price`` maps each chunk (a :class:`View`) to its
    requests' :class:`Charges`, and the billed window's requests are summed (per component and
    per bootstrap unit, :class:`Pricing`); their arrays are kept only when the context keeps
    requests (``BillContext(keep_requests=...)``).

    Without ``blocks`` only the billed chunks are priced, from the first billed request on; with
    it every chunk is, in order and with its blocks (and the optional ``block_columns``, None
    for all), so a ``price`` that carries state from one chunk to the next (breakpoints,
    prefix units) sees the whole trace."""
    billed = ctx.billed(window)
    pricing = Pricing(billed.n_units, ctx.keep_requests)
    units_of = billed.mapper()
    with ctx.pass_progress(f"pricing {provider}") if blocks else nullcontext(None) as tick:
        for view in ctx.views(billed.first_row, blocks=blocks, columns=block_columns):
            lo = max(billed.first_row - view.a, 0)
            charges = price(view)
            if tick is not None:
                tick(view.a + view.n)
            if lo >= view.n:
                continue
            inverse, units = units_of(view.cols, lo)
            pricing.add(inverse, input_tokens=view.input_tokens[lo:], units=units,
                        **charges.rows(lo))
    return pricing.bill(
        provider=provider, kind=kind, reuse=reuse, window=window, unit_label=billed.label,
        window_usd=dict(window_usd or {}), monthly_usd=dict(monthly_usd or {}),
        storage_token_hours=storage_token_hours, storage_bytes=storage_bytes,
        notes=notes, placeholder=placeholder, baseline_monthly_usd=float(baseline_monthly_usd),
        extra=dict(extra or {}))


def hits_and_writes(run: RunChunk, input_tokens: np.ndarray,
                    hit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(read, written, bypass) tokens per request for a cache that writes every unread token of
    an eligible prompt; requests below the minimum bypass the cache."""
    read = np.where(run.eligible, hit, 0)
    written = np.where(run.eligible, input_tokens - read, 0)
    bypass = np.where(run.eligible, 0, input_tokens)
    return read, written, bypass
