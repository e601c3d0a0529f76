"""Read-only access to a run folder (what ``simkv run`` wrote): the renderer's only input.

Layout (docs/pipeline.md): ``<run>/<stage>/manifest.json`` (simkv.atomicio's manifest format),
``<run>/<stage>/<table>.parquet`` and ``<run>/<stage>/facts.json``.  This module imports no
simulator code, so rendering a report never runs a simulation.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from simkv.atomicio import read_manifest

MANIFEST = "manifest.json"
FACTS = "facts.json"


class StageMissing(LookupError):
    """The run folder has no (complete) output of a stage."""


class RunView:
    """The stages' outputs in ``run_dir``, read lazily and memoized."""

    def __init__(self, run_dir: str | Path, *, only_last_run: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.only_last_run = only_last_run
        self._tables: dict[tuple[str, str], pd.DataFrame] = {}
        self._facts: dict[str, dict[str, Any]] = {}
        run_manifest = self.run_dir / MANIFEST
        #: the stages of the last run into this folder (a folder may keep older stages' outputs
        #: as a cache, e.g. the measured stage of a full run under a later --quick run)
        self.stages: tuple[str, ...] = tuple(
            s["name"] for s in read_manifest(run_manifest).get("stages", [])
            if s.get("status") != "skipped") if run_manifest.is_file() else ()

    def has(self, stage: str) -> bool:
        """Whether ``stage`` ran (or was reused) in the last run into this folder."""
        listed = stage in self.stages or not self.only_last_run
        return listed and (self.run_dir / stage / MANIFEST).is_file()

    def manifest(self, stage: str) -> dict[str, Any]:
        path = self.run_dir / stage / MANIFEST
        if not path.is_file():
            raise StageMissing(f"stage {stage!r} has not run in {self.run_dir}")
        return read_manifest(path)

    def has_table(self, stage: str, name: str) -> bool:
        return self.has(stage) and (self.run_dir / stage / f"{name}.parquet").is_file()

    def table(self, stage: str, name: str) -> pd.DataFrame:
        """A copy of table ``name`` of ``stage`` (callers may modify it)."""
        key = (stage, name)
        if key not in self._tables:
            path = self.run_dir / stage / f"{name}.parquet"
            if not self.has(stage) or not path.is_file():
                raise StageMissing(f"stage {stage!r} wrote no table {name!r} in {self.run_dir}")
            self._tables[key] = pd.read_parquet(io.BytesIO(path.read_bytes()))
        return self._tables[key].copy()

    def facts(self, stage: str) -> dict[str, Any]:
        if stage not in self._facts:
            path = self.run_dir / stage / FACTS
            if not self.has(stage) or not path.is_file():
                raise StageMissing(f"stage {stage!r} wrote no facts in {self.run_dir}")
            self._facts[stage] = json.loads(path.read_text(encoding="utf-8"))
        return self._facts[stage]

    def path(self, stage: str, rel: str) -> Path:
        return self.run_dir / stage / rel
