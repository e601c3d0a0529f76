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

from simkv.errors import InputError
from simkv.trace.format_registry import FORMATS, TraceFormat, register_format
from simkv.trace.model import Trace

__all__ = ["FORMATS", "TraceFormat", "register_format", "guess_format", "trace_format",
           "load_trace", "save_trace", "save_trace_chunks"]


def _ensure_loaded() -> None:
    # importing the modules registers the built-in formats
    from simkv.trace import importers, mooncake, parquet  # noqa: F401


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
    if not path.exists():
        raise InputError("trace file not found", source=path)
    if path.is_dir():
        raise InputError("is a directory, not a trace file", source=path)
    return FORMATS.get(format or guess_format(path), where="--format")


def load_trace(path: str | Path, format: str | None = None, **kwargs) -> Trace:
    """Read a trace file; the format is guessed from the suffix unless given."""
    path = Path(path)
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
    if fmt.write_chunks is not None:
        fmt.write_chunks(chunks, path)
        return
    from simkv.trace.model import concat_traces

    fmt.write(concat_traces(list(chunks)), path)
