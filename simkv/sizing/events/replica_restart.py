"""``replica_restart``: a serving replica restarts, so every non-persistent level (HBM, DRAM,
local disk) loses its contents; persistent levels (the bucket) keep theirs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simkv.sizing.events.base import Event, EventKind, register_event

if TYPE_CHECKING:
    from simkv.sizing.levelrun import LevelsRun


def apply_replica_restart(run: LevelsRun, ev: Event, r: int) -> None:
    for lv, s in zip(run.levels, run.state, strict=True):
        if not lv.persistent:
            s.clear()


register_event(EventKind("replica_restart", frozenset(), frozenset(), apply_replica_restart))
