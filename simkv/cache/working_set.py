"""The working set of a trace stream: KV bytes of every distinct block, chunk by chunk.

Why a carried accumulator: the report sizes its grids and explorer on the working set of
traces it only streams (a run folder's file, one model of a mix, a growth copy), so the id map
is carried from chunk to chunk instead of densifying the whole block array.  Each distinct
block weighs its own model's block bytes at its last access, as the whole-trace assignment
``weight[dense_ids] = block_bytes_per_access(trace)`` leaves it (the last write wins).
Memory: per distinct block, an id-map entry and an int64 weight.
"""

from __future__ import annotations

import numpy as np

from simkv.cache.engine import block_bytes_per_access
from simkv.idmap import IdMap
from simkv.trace.model import Trace
from simkv.trace.stream import TraceSource


class WorkingSet:
    """Feed consecutive chunks of one stream (:meth:`add`); :attr:`bytes` is the working set."""

    def __init__(self) -> None:
        self._idmap = IdMap()
        self._weight = np.zeros(0, dtype=np.int64)

    def add(self, chunk: Trace) -> None:
        ids = self._idmap.map(chunk.block_hashes)
        if len(ids) and int(ids.max()) >= len(self._weight):
            grown = np.zeros(max(int(ids.max()) + 1, 2 * len(self._weight)), dtype=np.int64)
            grown[:len(self._weight)] = self._weight
            self._weight = grown
        self._weight[ids] = block_bytes_per_access(chunk)

    @property
    def bytes(self) -> int:
        return int(self._weight.sum())


def working_set_bytes(source: Trace | TraceSource, chunk_requests: int | None = None) -> int:
    """KV bytes of every distinct block of ``source``, read chunk by chunk (block hashes only;
    a reader may hand out its dense ids, which only equality needs)."""
    ws = WorkingSet()
    for chunk in TraceSource.of(source).chunks(chunk_requests, columns=(), ids_as_keys=True):
        ws.add(chunk)
    return ws.bytes
