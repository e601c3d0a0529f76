"""Per-request records written to Parquet chunk by chunk, as a stream produces them.

The file is written through ``simkv.atomicio`` (a temporary file renamed into place when the
stream ends cleanly), one row group per chunk, so a month of records never sits in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from simkv.atomicio import atomic_writer

if TYPE_CHECKING:  # frames arrive from the caller; a no-op sink never needs pandas
    import pandas as pd


class RecordsWriter:
    """A context manager and a sink: call it with each chunk's records DataFrame.

    ``path`` None: a no-op sink (nothing written), so callers need no second code path.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._ctx = None
        self._fh = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> RecordsWriter:
        if self.path is not None:
            self._ctx = atomic_writer(self.path, "wb")
            self._fh = self._ctx.__enter__()
        return self

    def __call__(self, frame: pd.DataFrame) -> None:
        if self._fh is None:
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._fh, table.schema, compression="zstd")
        self._writer.write_table(table.cast(self._writer.schema))

    def __exit__(self, *exc) -> None:
        if self._ctx is None:
            return
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._ctx.__exit__(*exc)
