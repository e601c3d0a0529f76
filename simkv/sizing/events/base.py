"""What a lifecycle event kind is: its parameters, its checks and the handler that applies it.

Each kind lives in its own module of this package and registers one ``EventKind`` in
``EVENTS``; ``simkv.sizing.lifecycle`` validates event parameters against it and
``simkv.sizing.hierarchy.simulate_levels`` dispatches to its ``apply`` just before the first
request arriving at or after the event's time.  Adding a kind is adding a module here and
importing it in ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simkv.errors import InputError
from simkv.registry import Registry

if TYPE_CHECKING:
    from simkv.sizing.levelrun import LevelsRun


@dataclass(frozen=True)
class Event:
    """One lifecycle event at ``time_s`` (validated by ``simkv.sizing.lifecycle``)."""

    time_s: float
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


def no_check(run: LevelsRun, ev: Event) -> None:
    return None


@dataclass(frozen=True)
class EventKind:
    """One kind: required and optional parameters, a check before the run, the handler.

    ``apply(run, ev, r)`` changes the run's level states; ``r`` is the request it applies
    before (``n_requests`` for events after the last request)."""

    name: str
    required: frozenset[str]
    optional: frozenset[str]
    apply: Callable[[LevelsRun, Event, int], None]
    check: Callable[[LevelsRun, Event], None] = no_check


EVENTS: Registry[EventKind] = Registry("lifecycle event")


def register_event(kind: EventKind) -> EventKind:
    """Register ``kind`` under its name (a duplicate name is an error)."""
    return EVENTS.register(kind.name, kind)


def check_level(run: LevelsRun, ev: Event) -> None:
    """The level the event names exists (default: the persistent bucket)."""
    run.hierarchy.index(ev.get("level"), where=f"event {ev.kind}.level")


def check_model(run: LevelsRun, ev: Event) -> None:
    """The model the event names is one the trace uses."""
    if ev.get("model") not in run.model_idx:
        raise InputError(f"event names a model the trace does not use: {ev.get('model')!r}",
                         where=f"event {ev.kind}.model")
