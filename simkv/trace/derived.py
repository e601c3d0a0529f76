"""Derived data a reader or a caller attaches to a Trace object, not part of its fields.

A v2 Parquet reader knows each chunk's dense ids (``attach_stream_ids``); an in-memory trace
streamed whole is marked so that its dense ids may be computed once and cached on the object
(``mark_whole``).  Like ``simkv.cache.stream.dense_block_ids``'s cache, these live in the
object's ``__dict__``: the Trace's fields and equality are unchanged.
"""

from __future__ import annotations

import numpy as np

from simkv.trace.model import Trace


def attach_stream_ids(chunk: Trace, ids: np.ndarray, n_before: int, n_after: int) -> None:
    """Record on ``chunk`` the dense ids its reader already knows: ids in first-appearance
    order over the stream from its start, ``n_before`` of them assigned before this chunk and
    ``n_after`` after it."""
    chunk.__dict__["_stream_ids"] = (ids, int(n_before), int(n_after))


def stream_ids(chunk: Trace) -> tuple[np.ndarray, int, int] | None:
    """What :func:`attach_stream_ids` recorded on ``chunk``, or None."""
    return chunk.__dict__.get("_stream_ids")


def mark_whole(trace: Trace) -> Trace:
    """Mark ``trace`` as a whole stream (its only chunk), so that a consumer may take its dense
    ids from ``simkv.cache.stream.dense_block_ids``, computed once and cached on the object."""
    trace.__dict__["_whole_stream"] = True
    return trace


def is_whole(chunk: Trace) -> bool:
    return bool(chunk.__dict__.get("_whole_stream"))
