"""YAML for storage hierarchies: pydantic at the edge, frozen dataclasses inside.

Example (every size accepts units, every duration too)::

    placement: inclusive          # or exclusive (needs one chunk size)
    admission: all                # or second_access
    promote_on_hit: true
    demote_on_evict: true
    levels:
      - {name: hbm, capacity: 20GiB, chunk_tokens: 16, read_bandwidth: 3.35TB, write_bandwidth: 3.35TB}
      - {name: dram, capacity: 5GB, chunk_tokens: 256, read_bandwidth: 64GB, write_bandwidth: 64GB,
         latency: 0.00001}
      - {name: bucket, capacity: 2TB, chunk_tokens: 256, read_bandwidth: 2GB, write_bandwidth: 2GB,
         latency: 0.005, persistent: true, price_usd_per_gib_month: 0.02,
         quotas: {llama-3.1-8b: 500GB}}
    events:
      - {time_s: 3600, kind: replica_restart}

Bandwidths are bytes per second written as sizes ("64GB" = 64e9 B/s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError

from simkv.errors import InputError
from simkv.sizing.levels import Hierarchy, StorageLevel
from simkv.sizing.lifecycle import Event, event_from_dict
from simkv.units import parse_duration, parse_size
from simkv.validate import UserModel
from simkv.yamlio import read_yaml, validation_error


class _LevelModel(UserModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    capacity: str | int | float | None = None
    chunk_tokens: int
    read_bandwidth: str | int | float
    write_bandwidth: str | int | float
    latency: str | int | float = 0.0
    price_usd_per_gib_month: float = 0.0
    persistent: bool = False
    store_partial: bool = True
    ttl: str | int | float | None = None
    quotas: dict[str, str | int | float] = {}


class _HierarchyModel(UserModel):
    model_config = ConfigDict(extra="forbid")
    placement: str = "inclusive"
    admission: str = "all"
    promote_on_hit: bool = True
    demote_on_evict: bool = True
    levels: list[_LevelModel]
    events: list[dict[str, Any]] = []


def _unlimited(v) -> bool:
    return v is None or str(v).strip().lower() in ("inf", "unlimited", "none")


def hierarchy_from_dict(data: Any, *, source: str = "levels") -> tuple[Hierarchy, list[Event]]:
    try:
        m = _HierarchyModel.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source) from None
    levels = []
    for i, lv in enumerate(m.levels):
        w = f"field levels.{i}"
        try:
            levels.append(StorageLevel(
                name=lv.name,
                capacity_bytes=None if _unlimited(lv.capacity) else parse_size(lv.capacity, where=f"{w}.capacity"),
                chunk_tokens=lv.chunk_tokens,
                read_bytes_per_s=float(parse_size(lv.read_bandwidth, where=f"{w}.read_bandwidth")),
                write_bytes_per_s=float(parse_size(lv.write_bandwidth, where=f"{w}.write_bandwidth")),
                latency_s=parse_duration(lv.latency, where=f"{w}.latency") if lv.latency not in (0, 0.0, "0") else 0.0,
                price_usd_per_gib_month=lv.price_usd_per_gib_month, persistent=lv.persistent,
                store_partial=lv.store_partial,
                ttl_s=None if _unlimited(lv.ttl) else parse_duration(lv.ttl, where=f"{w}.ttl"),
                quotas_bytes=tuple((k, parse_size(v, where=f"{w}.quotas.{k}")) for k, v in lv.quotas.items()),
            ))
        except InputError as exc:
            raise InputError(exc.detail, source=source, where=exc.where) from None
    try:
        h = Hierarchy(tuple(levels), placement=m.placement, promote_on_hit=m.promote_on_hit,
                      demote_on_evict=m.demote_on_evict, admission=m.admission)
        events = [event_from_dict(d, where=f"field events.{i}") for i, d in enumerate(m.events)]
    except InputError as exc:
        raise InputError(exc.detail, source=source, where=exc.where) from None
    return h, events


def load_hierarchy(path: Path) -> tuple[Hierarchy, list[Event]]:
    """Hierarchy and events from a YAML file (errors name the file and field)."""
    data = read_yaml(path, "levels file")
    return hierarchy_from_dict(data, source=str(path))
