"""Parsing of sizes and durations given by users ("10GiB", "1e9", "5m", "inf").

Sizes: a number with an optional decimal (kB, MB, GB, TB: powers of 1000) or binary
(KiB, MiB, GiB, TiB: powers of 1024) suffix, with or without a space; a bare number is bytes.
Durations: a number with an optional suffix ms, s, m/min, h, d; a bare number is seconds;
``inf``/``none`` means no limit (returned as ``None``).
"""

from __future__ import annotations

import math
import re

from simkv.errors import InputError

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_DURATION_UNITS = {"": 1.0, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0,
                   "h": 3600.0, "hr": 3600.0, "d": 86400.0, "day": 86400.0, "days": 86400.0}
_NUM = r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"
#: Sizes are held in int64 by every kernel and column: larger ones are refused, not wrapped.
MAX_SIZE_BYTES = 2**63 - 1
#: Durations beyond ~31,700 years are typos (give ``inf`` for "no limit").
MAX_DURATION_S = 1e12
_MAX_TEXT = 100
_SIZE_RE = re.compile(rf"^\s*{_NUM}\s*([A-Za-z]*)\s*$")


def parse_size(text: str | int | float, *, where: str = "size") -> int:
    """Bytes from a size string; raises InputError naming ``where`` if it cannot be parsed."""
    if isinstance(text, bool):
        raise InputError(f"not a size: {text!r}", where=where)
    if isinstance(text, int | float):
        value, unit = _as_float(text, where), ""
    else:
        m = _SIZE_RE.match(str(text)) if len(str(text)) <= _MAX_TEXT else None
        if not m:
            raise InputError(f"not a size: {_short(text)} (examples: 10GiB, 10 GB, 1e9)",
                             where=where)
        value, unit = float(m.group(1)), m.group(2).lower()
    if unit not in _SIZE_UNITS:
        raise InputError(f"unknown size unit {unit!r} in {_short(text)}", where=where)
    size = value * _SIZE_UNITS[unit]
    if not math.isfinite(size) or size < 0:
        raise InputError(f"size must be finite and >= 0: {_short(text)}", where=where)
    if size > MAX_SIZE_BYTES:
        raise InputError(f"size {_short(text)} is over the largest simkv takes (2^63 - 1 bytes)",
                         where=where)
    return int(round(size))


def _as_float(number: int | float, where: str) -> float:
    try:
        return float(number)
    except OverflowError:  # an int beyond float range (10**400)
        raise InputError(f"number too large: {_short(number)}", where=where) from None


def _short(text: object) -> str:
    """The user's text for an error line, cut to a readable length."""
    s = repr(text)
    return s if len(s) <= 60 else s[:57] + "...'"


def parse_duration(text: str | int | float | None, *, where: str = "duration") -> float | None:
    """Seconds from a duration string; ``None`` for inf/none (no limit)."""
    if text is None:
        return None
    if isinstance(text, bool):
        raise InputError(f"not a duration: {text!r}", where=where)
    if isinstance(text, int | float):
        value, unit = _as_float(text, where), ""
    else:
        s = str(text).strip().lower()
        if s in ("inf", "none", "infinite", "never"):
            return None
        m = _SIZE_RE.match(s) if len(s) <= _MAX_TEXT else None
        if not m:
            raise InputError(f"not a duration: {_short(text)} (examples: 300, 5m, 1h, inf)",
                             where=where)
        value, unit = float(m.group(1)), m.group(2)
    if unit not in _DURATION_UNITS:
        raise InputError(f"unknown duration unit {unit!r} in {_short(text)}", where=where)
    seconds = value * _DURATION_UNITS[unit]
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"duration must be finite and > 0: {_short(text)}", where=where)
    if seconds > MAX_DURATION_S:
        raise InputError(f"duration {_short(text)} is over {MAX_DURATION_S:g} s (give inf for "
                         "no limit)", where=where)
    return seconds


#: Longer comma lists are typos or attacks: each item is a pass over the trace.
MAX_LIST_ITEMS = 1000


def parse_list(text: str, parse, *, where: str, max_items: int = MAX_LIST_ITEMS) -> list:
    """Comma-separated list of values parsed by ``parse`` (at most ``max_items``)."""
    items = [t for t in (p.strip() for p in str(text).split(",")) if t]
    if not items:
        raise InputError("empty list", where=where)
    if len(items) > max_items:
        raise InputError(f"{len(items):,} values; at most {max_items:,} are taken", where=where)
    return [parse(t, where=where) for t in items]


def format_bytes(n: float) -> str:
    """Human-readable binary size, for tables."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"
