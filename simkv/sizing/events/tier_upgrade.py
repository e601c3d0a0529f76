"""``tier_upgrade`` capacity [level]: change a level's capacity keeping every entry (a
capacity upgrade without data loss); a smaller capacity evicts least recently used entries
until the level fits, and their bytes count as evicted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simkv.sizing.events.base import Event, EventKind, check_level, register_event

if TYPE_CHECKING:
    from simkv.sizing.levelrun import LevelsRun


def apply_tier_upgrade(run: LevelsRun, ev: Event, r: int) -> None:
    s = run.level_of(ev.get("level"))
    s.capacity = int(ev.get("capacity_bytes"))
    run.count_evicted(s.shrink(), r)


register_event(EventKind("tier_upgrade", frozenset({"capacity_bytes"}), frozenset({"level"}),
                         apply_tier_upgrade, check_level))
