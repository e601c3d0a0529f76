"""The registry of trace formats (``--format``): what a format provides, by name.

Kept apart from ``simkv.trace.formats`` (which loads the built-in formats and reads and writes
files through them) so that a format module registers itself without importing the code that
imports it: no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from simkv.registry import Registry
from simkv.trace.model import Trace


@dataclass(frozen=True)
class TraceFormat:
    name: str
    read: Callable[..., Trace]
    write: Callable[[Trace, Path], None] | None
    suffixes: tuple[str, ...] = ()
    description: str = ""
    read_chunks: Callable[..., Iterator[Trace]] | None = None
    write_chunks: Callable[[Iterable[Trace], Path], None] | None = None


FORMATS: Registry[TraceFormat] = Registry("trace format")


def register_format(fmt: TraceFormat) -> TraceFormat:
    FORMATS.register(fmt.name, fmt)
    return fmt
