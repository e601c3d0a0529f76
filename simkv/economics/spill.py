"""Per-request columns of a bill's trace and cache runs, kept on disk instead of in memory.

A bill needs a few numbers per request (arrival, input tokens, session, blocks; each cache
run's hit tokens, hit blocks and blocks already cached) in several passes: the billed window,
the bootstrap units, each book's per-request dollars.  Held in memory they cost ~50 bytes a
request plus ~25 a run, which on a month of traffic (13.5M requests) is gigabytes.  They are
written once, in request order, to flat binary files in a temporary folder
(``tempfile.gettempdir()``, i.e. ``$TMPDIR``) and read back a slice at a time, so memory is one
chunk per pass.  The folder goes when its :class:`Spill` is dropped or the process exits.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from simkv.errors import InputError
from simkv.units import format_bytes


class Spill:
    """Named int64/float64 columns appended in order and read back by row range.

    The folder is made on the first write (so building a bill's trace costs no file until it
    has requests) and removed by a finalizer: when the Spill is garbage-collected, or at exit.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self._parent = Path(folder) if folder is not None else None
        self._dir: Path | None = None
        self._dtypes: dict[str, np.dtype] = {}
        self._rows: dict[str, int] = {}
        self._finalizer: weakref.finalize | None = None

    @property
    def folder(self) -> Path:
        if self._dir is None:
            parent = self._parent or Path(tempfile.gettempdir())
            self._dir = Path(tempfile.mkdtemp(prefix="simkv-bills-", dir=parent))
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        return self._dir

    def check_disk(self, n_rows: int, n_columns: int, what: str) -> None:
        """Refuse, with the estimate, when the folder's disk cannot take ``n_columns`` more
        8-byte columns of ``n_rows`` rows."""
        need = 8 * int(n_rows) * int(n_columns)
        free = shutil.disk_usage(self._parent or tempfile.gettempdir()).free
        if need > free:
            raise InputError(f"bills keep {what} on disk: about {format_bytes(need)} "
                             f"({n_rows:,} requests x {n_columns} x 8 bytes) and "
                             f"{format_bytes(free)} is free in {self._parent or tempfile.gettempdir()}"
                             ": point TMPDIR at a disk with room", where="TMPDIR")

    def append(self, name: str, values: np.ndarray) -> None:
        """Append ``values`` to column ``name`` (created on first use with their dtype)."""
        arr = np.ascontiguousarray(values)
        if name not in self._dtypes:
            if arr.dtype.kind not in "if" or arr.dtype.itemsize != 8:
                raise TypeError(f"spilled columns are int64 or float64, not {arr.dtype}")
            self._dtypes[name], self._rows[name] = arr.dtype, 0
            (self.folder / name).touch()
        elif arr.dtype != self._dtypes[name]:
            arr = arr.astype(self._dtypes[name])
        with open(self.folder / name, "ab") as f:
            arr.tofile(f)
        self._rows[name] += len(arr)

    def rows(self, name: str) -> int:
        return self._rows[name]

    def read(self, name: str, a: int, b: int) -> np.ndarray:
        """Rows ``[a, b)`` of column ``name``."""
        dt = self._dtypes[name]
        n = max(0, min(b, self._rows[name]) - a)
        if n == 0:
            return np.zeros(0, dtype=dt)
        return np.fromfile(self.folder / name, dtype=dt, count=n, offset=a * dt.itemsize)

    def drop(self, name: str) -> None:
        """Delete column ``name`` (a run that is no longer memoized)."""
        if name in self._dtypes:
            del self._dtypes[name], self._rows[name]
            (self.folder / name).unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the folder now (it is removed on garbage collection anyway)."""
        if self._finalizer is not None:
            self._finalizer()
        self._dir, self._dtypes, self._rows = None, {}, {}
