"""``model_upgrade`` model: a new version of the model invalidates its KV cache, so every
entry of that model goes from every level (other models' entries stay)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simkv.sizing.events.base import Event, EventKind, check_model, register_event

if TYPE_CHECKING:
    from simkv.sizing.levelrun import LevelsRun


def apply_model_upgrade(run: LevelsRun, ev: Event, r: int) -> None:
    m = run.model_idx[ev.get("model")]
    for s in run.state:
        s.clear(m)


register_event(EventKind("model_upgrade", frozenset({"model"}), frozenset(), apply_model_upgrade,
                         check_model))
