"""Reading a trace file as consecutive chunks of whole requests (what ``trace partition`` reads).

The chunks come from the one streaming reader, ``simkv.trace.stream.TraceSource.chunks``
(Parquet a row group at a time, Mooncake JSONL line by line), so memory holds one chunk.
``iter_trace_chunks`` adds what the partitioner needs on top: the index of each chunk's first
request in the whole trace, and a check that arrival times never decrease across chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from simkv.errors import InputError
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource


def iter_trace_chunks(path: Path, format: str | None, chunk_requests: int) -> Iterator[tuple[int, Trace]]:
    """(index of the chunk's first request, chunk) for consecutive chunks of the trace file."""
    if not path.exists():
        raise InputError("trace file not found", source=path)
    if path.is_dir():
        raise InputError("is a directory, not a trace file", source=path)
    chunks = TraceSource.of(path, format).chunks(chunk_requests)
    first, last_t = 0, -np.inf
    for chunk in chunks:
        if chunk.n_requests and chunk.arrival_s[0] < last_t:
            raise InputError(f"arrival times decrease at request {first}", source=path)
        last_t = chunk.arrival_s[-1] if chunk.n_requests else last_t
        yield first, chunk
        first += chunk.n_requests
