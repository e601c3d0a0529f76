"""What a report is made of: inputs (workloads, options), sections, tables, figures.

Sections are built from a run folder only (the tables the stages wrote, ``simkv.pipeline``):
each section function receives a :class:`ReportContext`, reads its stage's tables through
``ctx.run`` (a :class:`~simkv.report.runview.RunView`), writes the data behind its figures
through :meth:`ReportContext.write_data` (so every caption can name its file) and returns a
:class:`Section` whose readings are computed from that data.  Nothing here touches the disk
except ``write_data``, which writes under the report's folder; nothing here simulates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simkv.atomicio import atomic_write_text
from simkv.report.figures import BASES, Figure, png_bytes
from simkv.report.runview import RunView

#: Section status values, shown as a badge: ``ok`` (all inputs present), ``partial`` (some parts
#: missing, said so), ``not_run`` (a step the user skipped, e.g. --quick), ``unavailable`` (the
#: function it needs is not in this build).
STATUSES = ("ok", "partial", "not_run", "unavailable")


class Missing(RuntimeError):
    """A part of the run a section needs is absent (a stage not run, a table not written)."""


@dataclass(frozen=True)
class ReportOptions:
    """Knobs of one report run (all deterministic; ``quick`` shrinks the grids)."""

    quick: bool = False
    seed: int = 0
    days_per_month: float = 30.0
    pricebooks_dir: Path | None = None
    tiers_path: Path | None = None
    measured_path: Path | None = None
    run_engine: bool = False
    measured_note: str = ""   # why the engine replay produced no results, when it did not
    offers_replay: bool = False  # make report: a full run replays on the CPU engine
    bench_path: Path = Path(".bench/latest.json")
    baseline_path: Path = Path("tests/bench/baseline.json")
    n_boot: int = 100
    title: str = "simkv sizing report"
    command: str = ""


@dataclass(frozen=True)
class Table:
    """A small table shown in the page (the full data is in ``data_file``)."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    data_file: str = ""
    basis: str = "modelled"


@dataclass
class Section:
    """One section of the report; ``readings`` are sentences computed from its data."""

    key: str
    title: str
    status: str = "ok"
    intro: str = ""
    readings: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    number: int = 0
    headline: str = ""        # one sentence for the summary at the top (default: first reading)

    @property
    def summary_line(self) -> str:
        if self.headline:
            return self.headline
        if self.readings:
            return self.readings[0]
        return self.missing[0] if self.missing else ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown section status {self.status!r}")

    def mark_missing(self, what: str) -> None:
        """Record a missing input; the section becomes ``partial`` (or stays unavailable)."""
        self.missing.append(what)
        if self.status == "ok":
            self.status = "partial"


class ReportContext:
    """Shared state of a run: inputs, options, the output folder and cached results."""

    def __init__(self, out_dir: Path, run: RunView, options: ReportOptions) -> None:
        self.out_dir = Path(out_dir)
        self.data_dir = self.out_dir / "data"
        self.run = run
        #: the workloads of the run (rows of the workloads stage's table: name, model, ...)
        self.workloads: list[Any] = (list(run.table("workloads", "workloads").itertuples())
                                     if run.has("workloads") else [])
        self.options = options
        self.cache: dict[str, Any] = {}
        self.data_files: list[str] = []
        self._fig_count: dict[str, int] = {}

    # ------------------------------------------------------------------ data and figures
    def write_data(self, name: str, frame: pd.DataFrame) -> str:
        """Write a figure's data as CSV under ``data/``; returns its path relative to the report."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad data file name {name!r}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        rel = f"data/{name}.csv"
        atomic_write_text(self.out_dir / rel, frame.to_csv(index=False, lineterminator="\n"))
        if rel not in self.data_files:
            self.data_files.append(rel)
        return rel

    def figure(self, section_key: str, fig, *, title: str, caption: str, data_file: str,
               basis: str) -> Figure:
        """Freeze a matplotlib figure into an embedded :class:`Figure`."""
        if basis not in BASES:
            raise ValueError(f"figure basis must be one of {BASES}")
        n = self._fig_count.get(section_key, 0) + 1
        self._fig_count[section_key] = n
        return Figure(id=f"fig-{section_key}-{n}", title=title, caption=caption,
                      data_file=data_file, basis=basis, png=png_bytes(fig))
