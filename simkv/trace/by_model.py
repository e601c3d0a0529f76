"""One model's requests of a trace stream, as a stream: a model mix split without loading it.

Bills, recommendations and the explorer's tables need one model per trace, so the report
splits a model mix into one trace per model.  :class:`ModelSource` is that split done chunk by
chunk: each chunk of ``base`` restricted to the requests of one model code and attributed to
that model alone.  Concatenated, its chunks equal the whole-trace split
``trace.select(np.flatnonzero(trace.model_index == code)).with_model(name)`` field by field:

- per-request columns (arrival, session ids, tenant ids, token counts) are the selected rows,
  untouched (sessions and tenants keep their ids; a session split across models appears in
  each model's trace with its requests of that model);
- each request's blocks (chained hashes, tags, content hashes) are copied with it and the block
  offsets rebuilt from 0; a concatenation of the chunks shifts them exactly as the whole
  select's cumulative sum does;
- ``meta`` (lifecycle events included) is copied unchanged, as ``select`` copies it: events
  are not filtered by model;
- a reader's dense block ids (``_stream_ids``) are dropped, as ``select`` drops them: a subset
  of the requests no longer numbers its blocks densely, so consumers map the hashes again.

Chunks without a request of the model are skipped, so a chunk of the view holds at most the
``chunk_requests`` asked of the base (consumers' results do not depend on chunk sizes).
``tests/unit/test_by_model.py`` checks the equality for chunk sizes 1, 7, 4096 and whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from simkv.trace.model import Trace, concat_traces
from simkv.trace.stream import TraceSource

#: a model of a mix is studied only with at least this many requests (bills need two arrivals)
MIN_REQUESTS = 2


@dataclass(frozen=True, eq=False)
class ModelSource(TraceSource):
    """The requests of ``base`` with ``model_index == code``, attributed to ``model`` only."""

    base: TraceSource | None = None
    code: int = 0
    model: str = ""
    #: requests of the model when counted beforehand (:func:`model_request_counts`)
    n_requests: int | None = None

    @property
    def name(self) -> str:
        assert self.base is not None
        return f"{self.base.name}[{self.model}]"

    def n_requests_hint(self) -> int | None:
        return self.n_requests

    def _raw_chunks(self, chunk_requests: int | None, columns, ids_as_keys: bool) -> Iterator[Trace]:
        assert self.base is not None
        for chunk in self.base.chunks(chunk_requests, columns, ids_as_keys=ids_as_keys):
            rows = np.flatnonzero(chunk.model_index == self.code)
            if len(rows):
                yield chunk.select(rows).with_model(self.model)

    def load(self) -> Trace:
        """The view as one Trace (tests compare it with the whole-trace split)."""
        parts = list(self.chunks())
        if not parts:
            raise ValueError(f"no request of model {self.model!r}")
        return concat_traces(parts)


def model_request_counts(source: TraceSource, n_models: int,
                         chunk_requests: int | None = None) -> np.ndarray:
    """Requests per model code (``n_models`` codes), in one pass over the per-request columns
    (no tags or content hashes read; requests without a model are not counted)."""
    counts = np.zeros(n_models, dtype=np.int64)
    for chunk in source.chunks(chunk_requests, columns=(), ids_as_keys=True):
        codes = chunk.model_index[chunk.model_index >= 0].astype(np.int64)
        counts += np.bincount(codes, minlength=n_models)[:n_models]
    return counts


def split_models(source: TraceSource, models: tuple[str, ...],
                 min_requests: int = MIN_REQUESTS) -> list[tuple[str, ModelSource]]:
    """(model, its requests as a stream) for every model of ``models`` (the trace's own list)
    with at least ``min_requests`` requests, in the trace's model order."""
    counts = model_request_counts(source, len(models))
    return [(name, ModelSource(base=source, code=k, model=name, n_requests=int(counts[k])))
            for k, name in enumerate(models) if counts[k] >= min_requests]
