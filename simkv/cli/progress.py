"""Progress of a long pass over a trace's chunks: a rich bar on a terminal, lines on a pipe.

On a terminal (stderr is a TTY) a rich progress bar counts requests (of a known total, or
just the count); otherwise one line goes to stderr each tenth of the total (each 2^20
requests when the total is unknown), so logs show that a long run is alive without flooding.
"""

from __future__ import annotations

import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from simkv.cli.common import err_console

_UNKNOWN_STEP = 1 << 20


class ChunkProgress:
    """Call with the number of requests done so far, after each chunk."""

    def __init__(self, what: str, total: int | None) -> None:
        self.what, self.total = what, total
        self._bar: Progress | None = None
        self._task = None
        self._next_line = self._step()

    def _step(self) -> int:
        return max(1, self.total // 10) if self.total else _UNKNOWN_STEP

    def __enter__(self) -> ChunkProgress:
        if sys.stderr.isatty():
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                                 transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def __call__(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
            return
        if done < self._next_line:
            return
        while self._next_line <= done:
            self._next_line += self._step()
        of = f" / {self.total:,} ({100 * done // self.total}%)" if self.total else ""
        sys.stderr.write(f"{self.what}: {done:,}{of} requests\n")
        sys.stderr.flush()

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
