"""Lifecycle event handlers, one module per kind, registered in ``EVENTS`` (see ``base``).

Importing this package registers the shipped kinds, in the order below."""

from simkv.sizing.events import (  # noqa: F401  (each module registers its kind)
    model_upgrade,
    quota,
    replica_restart,
    reset,
    template_change,
    tier_upgrade,
)
from simkv.sizing.events.base import EVENTS, EventKind, register_event

__all__ = ["EVENTS", "EventKind", "register_event"]
