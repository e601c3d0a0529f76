"""``reset`` / ``reset_bucket`` [level]: empty one level (default: the persistent bucket).

The product's "reset bucket" operation: every entry of the level goes at once, whatever its
age; other levels keep theirs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simkv.sizing.events.base import Event, EventKind, check_level, register_event

if TYPE_CHECKING:
    from simkv.sizing.levelrun import LevelsRun


def apply_reset(run: LevelsRun, ev: Event, r: int) -> None:
    run.level_of(ev.get("level")).clear()


for _name in ("reset", "reset_bucket"):
    register_event(EventKind(_name, frozenset(), frozenset({"level"}), apply_reset, check_level))
