"""Lifecycle events on the simulation timeline: resets, template changes, quotas, upgrades.

Events come from the workload spec (``trace.meta["events"]``, written by simkv.workloads) or
the CLI (``--event TIME:KIND[:key=value,...]``).  Each is applied just before the first
request arriving at or after its time.  Kinds:

- ``reset`` / ``reset_bucket`` [level]: empty a level (default: the persistent bucket);
- ``template_change`` [component, version]: a prompt component (system, tools, ...; none =
  the whole prompt) gets new content; entries holding the old one become stale bytes (never
  served again) until evicted or reset, and later requests hash to new chunks from that
  component on;
- ``quota`` model, capacity [level]: cap one model's bytes within a level;
- ``tier_upgrade`` capacity [level]: change a level's capacity keeping every entry (a smaller
  one evicts least recently used entries to fit);
- ``replica_restart``: clear every non-persistent level (HBM, DRAM, local disk);
- ``model_upgrade`` model: drop every entry of that model in every level.

Each kind is a module of ``simkv.sizing.events`` (its parameters and its handler).
"""

from __future__ import annotations

from typing import Any

from simkv.errors import InputError
from simkv.sizing.events import EVENTS
from simkv.sizing.events.base import Event
from simkv.trace.model import TAG_CODES
from simkv.units import parse_duration, parse_size


def event_from_dict(d: dict, *, where: str = "events") -> Event:
    """Validate one event dict ``{time_s, kind, ...}``."""
    if not isinstance(d, dict) or "kind" not in d or "time_s" not in d:
        raise InputError("an event needs time_s and kind", where=where)
    kind = str(d["kind"])
    spec = EVENTS.get(kind, where=f"{where}.kind")
    required, optional = spec.required, spec.optional
    params = {k: v for k, v in d.items() if k not in ("time_s", "kind")}
    if "capacity" in params and "capacity_bytes" not in params:
        params["capacity_bytes"] = params.pop("capacity")
    missing = required - set(params)
    if missing:
        raise InputError(f"{kind} needs {', '.join(sorted(missing))}", where=where)
    unknown = set(params) - required - optional
    if unknown:
        raise InputError(f"{kind} does not take {', '.join(sorted(unknown))}", where=where)
    if "capacity_bytes" in params:
        params["capacity_bytes"] = parse_size(params["capacity_bytes"], where=f"{where}.capacity")
    comp = params.get("component")
    if comp is not None and comp not in TAG_CODES:
        raise InputError(f"unknown component {comp!r} (valid: {', '.join(TAG_CODES)})",
                         where=f"{where}.component")
    try:
        t = float(d["time_s"])
    except (TypeError, ValueError):
        raise InputError(f"time_s is not a number: {d['time_s']!r}", where=where) from None
    if t < 0:
        raise InputError("time_s must be >= 0", where=where)
    return Event(t, kind, params)


def parse_event(text: str, *, where: str = "--event") -> Event:
    """``TIME:KIND[:key=value,...]``, e.g. ``1h:tier_upgrade:level=bucket,capacity=2TB``."""
    parts = str(text).split(":", 2)
    if len(parts) < 2:
        raise InputError(f"expected TIME:KIND[:key=value,...], got {text!r}", where=where)
    t = 0.0 if parts[0].strip() in ("0", "0s") else parse_duration(parts[0], where=where)
    if t is None:
        raise InputError("an event needs a finite time", where=where)
    d: dict[str, Any] = {"time_s": t, "kind": parts[1].strip()}
    if len(parts) == 3 and parts[2].strip():
        for item in parts[2].split(","):
            if "=" not in item:
                raise InputError(f"expected key=value, got {item!r}", where=where)
            k, v = item.split("=", 1)
            d[k.strip()] = v.strip()
    return event_from_dict(d, where=where)


def trace_events(meta: dict) -> list[Event]:
    """Events the workload generator stored in ``trace.meta["events"]``."""
    raw = meta.get("events") or []
    if not isinstance(raw, list):
        raise InputError("trace meta 'events' must be a list", where="meta.events")
    return [event_from_dict(d, where=f"meta.events[{i}]") for i, d in enumerate(raw)]


def sort_events(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.time_s)
