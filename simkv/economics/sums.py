"""Sums of a bill that do not depend on how its requests are cut into chunks.

A bill adds up per-request dollars over millions of requests, a chunk at a time.  Two sums:

- a component's total (:class:`ExactSum`): the correctly rounded sum of every value, kept as
  Shewchuk's non-overlapping partials (the algorithm behind Python's ``math.fsum``), so any
  chunking, and any order, gives the same float, and it is the closest float to the true sum
  (numpy's pairwise sum is within a few ulps of it, and changes with the array's length);
- per bootstrap unit (:func:`add_by_unit`): each request's value added to its unit's running
  sum in request order, which is what ``np.bincount(units, weights)`` does in one call; carried
  across chunks it gives ``bincount``'s floats over the whole billed window, bit for bit.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Partials a float64 sum can need (exponent range / mantissa bits ~ 40), with room.
_MAX_PARTIALS = 128


@numba.njit(cache=True)
def _grow(partials, n, xs):  # pragma: no cover - compiled
    """Add ``xs`` to the expansion ``partials[:n]`` (Shewchuk; ``math.fsum``'s msum)."""
    for k in range(len(xs)):
        x = xs[k]
        i = 0
        for j in range(n):
            y = partials[j]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                partials[i] = lo
                i += 1
            x = hi
        partials[i] = x
        n = i + 1
    return n


class ExactSum:
    """The correctly rounded sum of every value added (finite values only)."""

    def __init__(self) -> None:
        self._p = np.zeros(_MAX_PARTIALS, dtype=np.float64)
        self._n = 0

    def add(self, values: np.ndarray) -> None:
        xs = np.ascontiguousarray(values, dtype=np.float64)
        if len(xs):
            if not np.all(np.isfinite(xs)):
                raise ValueError("ExactSum adds finite values only")
            self._n = int(_grow(self._p, self._n, xs))
            assert self._n < _MAX_PARTIALS

    @property
    def value(self) -> float:
        """``math.fsum`` of the partials: the float nearest the exact sum."""
        return math.fsum(self._p[:self._n].tolist())


def add_by_unit(out: np.ndarray, units: np.ndarray, values: np.ndarray) -> None:
    """``out[u] += v`` for each request in order: ``np.bincount``'s loop, carried over chunks
    (``np.add.at`` adds unbuffered, one index after the other)."""
    np.add.at(out, units, np.asarray(values, dtype=np.float64))
