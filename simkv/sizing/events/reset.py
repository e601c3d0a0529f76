"""``reset`` / ``reset_bucket`` [level]: empty one level (default: the persistent bucket).

The product's "reset bucket" operation: every entry of the level goes at once, whatever its
age; other levels keep theirs."""

from __future__ import annotations

from typing import Any

from simkv.sizing.events.base import EventKind, check_level, register_event


def apply_reset(run: Any, ev: Any, r: int) -> None:
    run.level_of(ev.get("level")).clear()


for _name in ("reset", "reset_bucket"):
    register_event(EventKind(_name, frozenset(), frozenset({"level"}), apply_reset, check_level))
