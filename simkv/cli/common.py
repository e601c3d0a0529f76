"""Helpers shared by CLI commands: option parsing to validated values, output, safe writes."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from simkv.atomicio import check_target
from simkv.errors import InputError

console = Console(stderr=False)
err_console = Console(stderr=True)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        obj = float(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def print_json(obj: Any) -> None:
    """Machine-readable output on stdout: sorted keys, NaN/inf as null."""
    sys.stdout.write(json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")


def print_table(title: str, rows: list[tuple[str, Any]]) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows:
        if isinstance(value, float):
            value = f"{value:.4f}" if abs(value) < 10 else f"{value:,.2f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


def check_output_path(path: Path, *, force: bool, what: str = "--out",
                      inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse to overwrite a user's file unless ``--force`` was given, before any work.

    Also refused, even with ``--force``: an output that is one of the command's ``inputs``
    (``trace convert a.jsonl a.jsonl --force`` would destroy the only copy), a directory, a
    device such as ``/dev/full``, or a path whose folder does not exist.
    """
    try:
        check_target(path)
    except InputError as exc:
        raise InputError(exc.detail, source=exc.source, where=what) from None
    for src in inputs:
        if _same_file(path, src):
            raise InputError("is also the input; write to another file", source=path, where=what)
    if path.exists() and not force:
        raise InputError("exists; refusing to overwrite (give --force to replace it)", source=path,
                         where=what)
    return path


def check_output_dir(folder: Path, names: list[str], *, force: bool, what: str) -> Path:
    """A folder simkv will write ``names`` into: refuse clashes without --force, before work."""
    try:
        if folder.exists() and not folder.is_dir():
            raise InputError("is not a directory", source=folder, where=what)
        if not folder.parent.is_dir():
            raise InputError("parent directory does not exist", source=folder, where=what)
        clash = [n for n in names if (folder / n).exists()]
    except OSError as exc:  # a name too long for the filesystem, ...
        raise InputError(f"cannot use this folder ({exc.strerror or exc})", where=what) from None
    for n in names:
        if (folder / n).exists():
            check_target(folder / n)
    if clash and not force:
        raise InputError(f"{clash[0]} exists; refusing to overwrite (give --force)",
                         source=folder, where=what)
    return folder


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal (never in CI logs or pipes)."""
    return sys.stderr.isatty()


class stage:
    """A spinner on stderr for a step that may take more than a second (TTY only).

    The long steps are single compiled calls, so a spinner with the step's name is the honest
    progress indicator; multi-step commands use a rich progress bar instead.
    """

    def __init__(self, message: str) -> None:
        self.message = message
        self._status = None

    def __enter__(self) -> stage:
        if progress_enabled():
            self._status = err_console.status(self.message)
            self._status.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
