"""The report's inputs as the stages see them: one trace per workload (generated or the user's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simkv.trace.model import Trace


@dataclass(frozen=True)
class WorkloadInput:
    """One trace the report studies: a generated example workload or the user's own trace."""

    name: str
    trace: Trace
    model: str
    source: str
    description: str = ""
    spec: Any = None          # simkv.workloads WorkloadSpec when generated (lifecycle events)
    sha256: str = ""          # digest of the input file (spec YAML or trace file)
