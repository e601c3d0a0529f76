"""The explorer's table bundle and constants, free of simulator imports (the report renders a run
folder without importing any simulator: the explorer stage computes, this module only names)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: precomputed growth runs (copies of the sessions with fresh content, simkv.economics.growth)
TRAFFIC = (1, 2, 5)


@dataclass(frozen=True)
class ExplorerTables:
    """The explorer stage's tables (columns in simkv.report.explorer.tables)."""

    grid: pd.DataFrame
    volume: pd.DataFrame
    ttft: pd.DataFrame
