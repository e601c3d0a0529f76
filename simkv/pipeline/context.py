"""What a running stage sees: the options, the run folder so far, its own output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from simkv.pipeline.inputs import RunInputs
from simkv.pipeline.workload import WorkloadInput
from simkv.report.model import ReportOptions
from simkv.report.runview import RunView

#: workloads of a workloads stage output, by that output's digest and run folder: each a stream
#: of its trace file there (no stage loads a whole trace)
_LOADED: dict[str, list[WorkloadInput]] = {}


class StageContext:
    """``options`` and ``inputs`` of the run; upstream outputs through :meth:`table`/:meth:`facts`;
    ``out_dir`` is the stage's own (temporary) folder for files beyond tables and facts."""

    def __init__(self, options: ReportOptions, inputs: RunInputs, run_dir: Path, out_dir: Path,
                 upstream_digests: dict[str, str]) -> None:
        self.options = options
        self.inputs = inputs
        self.run_dir = Path(run_dir)
        self.out_dir = Path(out_dir)
        self._view = RunView(run_dir, only_last_run=False)
        self._digests = upstream_digests

    def table(self, stage: str, name: str) -> pd.DataFrame:
        return self._upstream(stage).table(stage, name)

    def facts(self, stage: str) -> dict[str, Any]:
        return self._upstream(stage).facts(stage)

    def _upstream(self, stage: str) -> RunView:
        if stage not in self._digests:
            raise ValueError(f"a stage read {stage!r} without declaring it in needs")
        return self._view

    def workloads(self) -> list[WorkloadInput]:
        """The run's workloads: streams of the workloads stage's trace files."""
        from simkv.trace.stream import TraceSource

        digest = self._digests.get("workloads")
        if digest is None:
            raise ValueError("a stage read the workloads without declaring needs=('workloads',)")
        key = f"{digest}:{self.run_dir.resolve()}"  # streams read this run folder's files
        if key not in _LOADED:
            rows = self.table("workloads", "workloads")
            _LOADED.clear()  # keep one run's traces in memory at a time
            _LOADED[key] = [
                WorkloadInput(name=r.name,
                              stream=TraceSource.of(
                                  self._view.path("workloads", r.trace_file).resolve()),
                              model=r.model, source=r.source, description=r.description,
                              sha256=r.sha256)
                for r in rows.itertuples()]
        return _LOADED[key]
