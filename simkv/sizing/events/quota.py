"""``quota`` model, capacity [level]: cap one model's bytes within a level; a model over its
new quota loses its own least recently used entries until it fits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simkv.sizing.events.base import Event, EventKind, check_level, check_model, register_event

if TYPE_CHECKING:
    from simkv.sizing.levelrun import LevelsRun


def apply_quota(run: LevelsRun, ev: Event, r: int) -> None:
    s = run.level_of(ev.get("level"))
    s.quotas[run.model_idx[ev.get("model")]] = int(ev.get("capacity_bytes"))
    run.count_evicted(s.shrink(), r)


def check_quota(run: LevelsRun, ev: Event) -> None:
    check_level(run, ev)
    check_model(run, ev)


register_event(EventKind("quota", frozenset({"model", "capacity_bytes"}), frozenset({"level"}),
                         apply_quota, check_quota))
