"""What a stage is, and the registry stages join (``simkv.registry.Registry``).

A stage is a function from a :class:`~simkv.pipeline.context.StageContext` to a
:class:`StageOutput` (named tables and a small JSON of facts), plus what its cache key covers:
the upstream stages whose outputs it reads, the external inputs it reads (price books, the
bench JSON, ...), the report options it depends on, and, implicitly, the source of every
simkv module its own module imports (``simkv.pipeline.codehash``).  Adding a stage is one
module that calls :func:`register_stage` (and, for a plug-in outside simkv, an entry point in
the ``simkv.stages`` group).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from simkv.registry import Registry

#: version of the stage manifest's own fields (``docs/pipeline.md``)
STAGE_SCHEMA_VERSION = 1


@dataclass
class StageOutput:
    """What a stage leaves: Parquet tables (by name), facts (JSON) and why parts are missing."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    #: schema version per table (default 1): bump it when a table's columns change meaning
    schema_versions: dict[str, int] = field(default_factory=dict)
    #: False for an output that must not be reused (a failed engine replay: try again next run)
    cacheable: bool = True


@dataclass(frozen=True)
class Stage:
    """One registered stage (see the module docstring for what each field feeds)."""

    name: str
    label: str
    run: Callable[[Any], StageOutput]
    needs: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    #: report options in the key (files are keyed by content through ``reads``, not by path)
    options: tuple[str, ...] = ()
    #: whether the stage runs under these report options (e.g. measured: not with --quick)
    enabled: Callable[[Any], bool] = field(default=lambda _opts: True)
    #: digests of inputs only this stage knows (a plug-in's own files), by name
    digests: Callable[[Any], dict[str, str]] = field(default=lambda _opts: {})
    #: extra top-level packages whose source the code hash follows (a plug-in's own)
    code_roots: tuple[str, ...] = ("simkv",)

    @property
    def module(self) -> str:
        return self.run.__module__


STAGES: Registry[Stage] = Registry("stage")


def register_stage(stage: Stage) -> Stage:
    """Add ``stage`` to :data:`STAGES` (a name registered twice is an error)."""
    STAGES.register(stage.name, stage)
    return stage
