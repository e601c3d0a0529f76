"""Number formatting for readings and tables (one style everywhere in the report)."""

from __future__ import annotations

import math


def usd(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    sign = "-" if x < 0 else ""
    return f"{sign}${abs(x):,.2f}"


def pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{100.0 * x:.{digits}f}%"


def size(n_bytes: float | None) -> str:
    """Binary units, three significant digits (1.50 GiB)."""
    if n_bytes is None or (isinstance(n_bytes, float) and not math.isfinite(n_bytes)):
        return "unlimited"
    v = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(v) < 1024 or unit == "PiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.3g} {unit}"
        v /= 1024.0
    return f"{v:.3g} PiB"  # pragma: no cover


def duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return "no TTL"
    s = float(seconds)
    for unit, div in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= div and s % div == 0:
            return f"{s / div:g} {unit}"
    if s >= 3600:
        return f"{s / 3600:.3g} h"
    if s >= 60:
        return f"{s / 60:.3g} min"
    return f"{s:g} s"


def ms(seconds: float | None) -> str:
    """Milliseconds below a minute; longer waits in minutes, hours or days."""
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return "n/a"
    if seconds >= 60.0:
        for unit, div in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
            if seconds >= div:
                return f"{seconds / div:.3g} {unit}"
    return f"{1000.0 * seconds:,.1f} ms"


def num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1000:
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


def replicas(n: float | None, meets: bool | None, over_slo: float | None = None) -> str:
    """A sized replica count: ``3``, or ``unservable (4.2x the SLO at 16)`` when none meets it."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "n/a"
    if meets or meets is None:
        return f"{int(n)}"
    over = "" if over_slo is None else f"{float(over_slo):,.1f}x the SLO "
    return f"unservable ({over}at {int(n)})"
