"""``template_change`` [component, version]: a prompt component (system, tools, ...; none =
the whole prompt) gets new content.

Entries holding the old content become stale: never served again, but their bytes stay used
until evicted, expired or reset.  The new version is recorded in ``run.versions``; from then
on every request's chunk keys from that component on are salted with it
(``simkv.hashing.template_salt``), so they miss and are written afresh."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simkv.sizing.events.base import Event, EventKind, register_event
from simkv.trace.model import TAG_CODES, TAG_NAMES

if TYPE_CHECKING:
    from simkv.sizing.levelrun import LevelsRun

ALL_COMPONENTS = (1 << len(TAG_NAMES)) - 1


def apply_template_change(run: LevelsRun, ev: Event, r: int) -> None:
    comp = ev.get("component")
    run.versions[comp] = int(ev.get("version", run.versions.get(comp, 0) + 1))
    bit = ALL_COMPONENTS if comp is None or not run.has_tags else 1 << TAG_CODES[comp]
    for s in run.state:
        s.mark_stale(lambda mask: bool(mask & bit))


register_event(EventKind("template_change", frozenset(), frozenset({"component", "version"}),
                         apply_template_change))
