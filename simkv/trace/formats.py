"""Trace formats, registered by name (``--format``): a reader and optionally a writer each.

A format may also read and write in chunks (``read_chunks(path, chunk_requests, columns)``
yields consecutive Traces; ``write_chunks(chunks, path)`` consumes them), which is what the
streaming commands use; a format without them is read whole and cut into chunks.
Importers (Alibaba, request logs) register here too, so ``load_trace`` and ``simkv trace
import`` find them by name; an unknown name lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from simkv.atomicio import atomic_path
from simkv.errors import InputError
from simkv.trace.format_registry import FORMATS, TraceFormat, register_format
from simkv.trace.model import Trace
from simkv.validate import input_file

__all__ = ["FORMATS", "TraceFormat", "register_format", "guess_format", "trace_format",
           "load_trace", "save_trace", "save_trace_chunks"]


def _ensure_loaded() -> None:
    # importing the modules registers the built-in formats
    from simkv.trace import importers, mooncake, parquet  # noqa: F401


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


def trace_format(path: Path, format: str | None = None) -> TraceFormat:
    """The registered format of an existing trace file (named, or guessed from the suffix)."""
    _ensure_loaded()
    path = input_file(path, "trace file")
    return FORMATS.get(format or guess_format(path), where="--format")


def load_trace(path: str | Path, format: str | None = None, **kwargs) -> Trace:
    """Read a trace file; the format is guessed from the suffix unless given."""
    path = input_file(path, "trace file")
    return trace_format(path, format).read(path, **kwargs)


def save_trace(trace: Trace, path: str | Path, format: str | None = None) -> None:
    """Write a trace; refuses formats that have no writer."""
    save_trace_chunks([trace], path, format)


def save_trace_chunks(chunks: Iterable[Trace], path: str | Path, format: str | None = None) -> None:
    """Write consecutive chunks of one trace (streamed where the format can; else joined)."""
    _ensure_loaded()
    path = Path(path)
    fmt = FORMATS.get(format or guess_format(path), where="--format")
    if fmt.write is None:
        raise InputError(f"format {fmt.name!r} can be read but not written", where="--format")
    if fmt.write_chunks is not None:  # the chunk writers write atomically themselves
        fmt.write_chunks(chunks, path)
        return
    from simkv.trace.model import concat_traces

    with atomic_path(path) as tmp:  # a failed write leaves an existing file as it was
        fmt.write(concat_traces(list(chunks)), tmp)
