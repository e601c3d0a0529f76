"""The report's inputs as the stages see them: one trace per workload (generated or the user's).

A workload's trace is a stream (:class:`~simkv.trace.stream.TraceSource`): the trace file the
workloads stage wrote (or the user's own), or an in-memory trace the generator made.  Stages
walk it with the streaming entry points (the cache engine, the sizing grid, the storage
levels); ``head`` is its first request (models, block size, lifecycle events, which columns
it has), read without the rest.  No stage loads a whole trace: Belady's bound spills to disk
(``simkv.sizing.belady``), and the bills, recommend and explorer stages split a model mix as a
stream (``simkv.trace.by_model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simkv.trace.model import Trace
    from simkv.trace.stream import TraceSource


@dataclass(frozen=True)
class WorkloadInput:
    """One trace the report studies: a generated example workload or the user's own trace.

    Give ``trace`` (in memory) or ``stream`` (a file, read chunk by chunk)."""

    name: str
    model: str
    source: str
    description: str = ""
    spec: Any = None          # simkv.workloads WorkloadSpec when generated (lifecycle events)
    sha256: str = ""          # digest of the input file (spec YAML or trace file)
    trace: Trace | None = None
    stream: TraceSource | None = None
    #: a model given for a trace that names none (``--model``), attached chunk by chunk
    attach_model: str | None = None

    def __post_init__(self) -> None:
        if (self.trace is None) == (self.stream is None):
            raise ValueError("a workload needs a trace or a stream, not both")

    def model_chunks(self):
        """The chunks with ``attach_model`` attached; a user's trace file must name a model
        for every request (checked here, as the workloads stage copies it)."""
        from simkv.cache.engine import resolve_trace_models
        from simkv.errors import InputError

        for chunk in self.chunks.chunks():
            chunk = resolve_trace_models(chunk, self.attach_model)
            if self.stream is not None and not chunk.has_models:
                raise InputError("the trace names no model: give --model NAME", where="--model")
            yield chunk

    @cached_property
    def chunks(self) -> TraceSource:
        """The workload's trace as a stream (an in-memory trace is its one chunk)."""
        from simkv.trace.stream import TraceSource

        return self.stream if self.stream is not None else TraceSource.of(self.trace)

    @cached_property
    def head(self) -> Trace:
        """The first request (models, block size, meta and optional columns of the trace)."""
        if self.trace is not None:
            return self.trace
        first = next(self.chunks.chunks(1), None)
        if first is None:
            from simkv.errors import InputError

            raise InputError("the trace has no requests", source=self.stream.path)
        return first

    @cached_property
    def n_requests(self) -> int:
        """Requests in the trace (from the file's metadata when it has it, else counted)."""
        if self.trace is not None:
            return self.trace.n_requests
        hint = self.chunks.n_requests_hint()
        if hint is not None:
            return hint
        return sum(c.n_requests for c in self.chunks.chunks(columns=(), ids_as_keys=True))

