"""Trace formats, registered by name (``--format``): a reader and optionally a writer each.

Importers (Alibaba, request logs) register here too, so ``load_trace`` and ``simkv trace
import`` find them by name; an unknown name lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simkv.atomicio import atomic_path
from simkv.errors import InputError
from simkv.registry import Registry
from simkv.trace.model import Trace
from simkv.validate import input_file


@dataclass(frozen=True)
class TraceFormat:
    name: str
    read: Callable[..., Trace]
    write: Callable[[Trace, Path], None] | None
    suffixes: tuple[str, ...] = ()
    description: str = ""


FORMATS: Registry[TraceFormat] = Registry("trace format")


def register_format(fmt: TraceFormat) -> TraceFormat:
    FORMATS.register(fmt.name, fmt)
    return fmt


def _ensure_loaded() -> None:
    # importing the modules registers the built-in formats
    from simkv.trace import mooncake, parquet  # noqa: F401
    try:
        from simkv.trace import importers  # noqa: F401
    except ImportError:  # importers are optional modules added by the workloads issue
        pass


def get_format(name: str, *, where: str = "--format") -> TraceFormat:
    """A registered format by name (the built-in ones loaded first)."""
    _ensure_loaded()
    return FORMATS.get(name, where=where)


def guess_format(path: Path) -> str:
    _ensure_loaded()
    suffix = path.suffix.lower()
    for name in FORMATS.names():
        if suffix in FORMATS.get(name).suffixes:
            return name
    raise InputError(f"cannot tell the trace format from the suffix {suffix!r}; give --format "
                     f"({', '.join(FORMATS.names())})", source=path)


def load_trace(path: str | Path, format: str | None = None, **kwargs) -> Trace:
    """Read a trace file; the format is guessed from the suffix unless given."""
    _ensure_loaded()
    path = input_file(path, "trace file")
    fmt = FORMATS.get(format or guess_format(path), where="--format")
    return fmt.read(path, **kwargs)


def save_trace(trace: Trace, path: str | Path, format: str | None = None) -> None:
    """Write a trace; refuses formats that have no writer."""
    _ensure_loaded()
    path = Path(path)
    fmt = FORMATS.get(format or guess_format(path), where="--format")
    if fmt.write is None:
        raise InputError(f"format {fmt.name!r} can be read but not written", where="--format")
    with atomic_path(path) as tmp:  # a failed write leaves an existing file as it was
        fmt.write(trace, tmp)
