"""A trace as a stream of chunks: the one way every consumer reads requests.

A :class:`TraceSource` is a trace file (read chunk by chunk by its format's chunk reader, so
memory holds one chunk) or an in-memory :class:`~simkv.trace.model.Trace` (cut into views, no
copy; the whole trace is one chunk unless asked otherwise).  Consumers (the cache engine, the
sizing grid, trace statistics, conversion) carry their state from one chunk to the next, so
their results do not depend on the chunk size; tests check that for sizes 1, 7, 4096 and the
whole trace.  Chunks are whole requests, never split.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from simkv.errors import InputError
from simkv.trace.derived import mark_whole
from simkv.trace.model import Trace

#: requests per chunk when reading a file and the user does not say (~50 MB of hashes at
#: 100 blocks per request)
DEFAULT_CHUNK_REQUESTS = 1 << 16
#: ``TraceSource.format`` of a `simkv trace partition` folder
PARTITION = "partition"
#: the CLI option that sets it (named in errors)
CHUNK_OPTION = "--chunk-requests"


def check_chunk_requests(n: int | None) -> int | None:
    """``n`` if it is a valid chunk size (None: the default), else InputError naming the option."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"must be a whole number of requests >= 1, got {n!r}", where=CHUNK_OPTION)
    return n


@dataclass(frozen=True)
class TraceSource:
    """Where a stream's chunks come from: ``path`` (+ ``format``) or an in-memory ``trace``."""

    path: Path | None = None
    format: str | None = None
    trace: Trace | None = None

    @classmethod
    def of(cls, trace_or_path: Trace | str | Path | TraceSource, format: str | None = None) -> TraceSource:
        if isinstance(trace_or_path, TraceSource):
            return trace_or_path
        if isinstance(trace_or_path, Trace):
            return cls(trace=trace_or_path)
        path = Path(trace_or_path)
        from simkv.trace.shardset import is_partition, open_partition

        if is_partition(path):  # a `simkv trace partition` folder, read back in request order
            open_partition(path)
            return cls(path=path, format=PARTITION)
        from simkv.trace.formats import trace_format

        trace_format(path, format)  # a missing file or unknown format fails here, up front
        return cls(path=path, format=format)

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else "trace"

    def n_requests_hint(self) -> int | None:
        """Requests in the stream when known without reading it (for progress), else None."""
        if self.trace is not None:
            return self.trace.n_requests
        if self.format == PARTITION:
            from simkv.trace.shardset import open_partition

            return open_partition(self.path).n_requests
        if self.path is not None and self.path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                return int(pq.ParquetFile(str(self.path)).metadata.num_rows)
            except (pa.ArrowException, OSError, UnicodeDecodeError):
                return None  # unreadable: the reader itself reports it, with the file named
        return None

    def chunks(self, chunk_requests: int | None = None, columns: tuple[str, ...] | None = None,
               *, ids_as_keys: bool = False) -> Iterator[Trace]:
        """Consecutive chunks of ``chunk_requests`` requests (an in-memory trace: one chunk
        unless given).  ``columns``: optional per-block columns wanted (None: all).
        ``ids_as_keys``: the caller compares block hashes only for equality, so a reader that
        stores dense ids may hand them out as the hashes (see ``simkv.trace.parquet``)."""
        check_chunk_requests(chunk_requests)
        last_t = float("-inf")
        first: Trace | None = None
        for chunk in self._raw_chunks(chunk_requests, columns, ids_as_keys):
            if first is None:
                first = chunk
            elif chunk.block_tokens != first.block_tokens or chunk.models != first.models:
                raise InputError("chunks disagree on block size or models", source=self.path)
            if chunk.n_requests:
                if chunk.arrival_s[0] < last_t:
                    raise InputError("arrival times must not decrease (across a chunk boundary)",
                                     source=self.path)
                last_t = float(chunk.arrival_s[-1])
            yield chunk

    def _raw_chunks(self, chunk_requests: int | None, columns, ids_as_keys: bool) -> Iterator[Trace]:
        if self.trace is not None:
            tr = self.trace
            step = chunk_requests or max(1, tr.n_requests)
            if step >= tr.n_requests:
                yield mark_whole(tr)  # the trace itself: its cached dense ids can be reused
                return
            yield from (tr.slice(a, a + step) for a in range(0, tr.n_requests, step))
            return
        assert self.path is not None
        step = chunk_requests or DEFAULT_CHUNK_REQUESTS
        if self.format == PARTITION:
            from simkv.trace.partition_stream import iter_partition

            yield from iter_partition(self.path, step)
            return
        from simkv.trace.formats import trace_format

        fmt = trace_format(self.path, self.format)
        if fmt.read_chunks is not None:
            yield from fmt.read_chunks(self.path, step, columns, ids_as_keys=ids_as_keys)
            return
        whole = fmt.read(self.path)  # a format without a chunk reader: read whole, then cut
        yield from TraceSource(trace=whole).chunks(step)

    def load(self) -> Trace:
        """The whole stream as one Trace (for the analyses that need it all at once)."""
        if self.trace is not None:
            return self.trace
        if self.format == PARTITION:
            from simkv.trace.shardset import open_partition, reassemble

            return reassemble(open_partition(self.path))
        from simkv.trace.formats import load_trace

        return load_trace(self.path, self.format)
