"""Exact percentiles of a stream of non-negative floats in bounded memory (radix selection).

``numpy.percentile`` (its default ``linear`` method) needs the sorted values at two ranks per
percentile.  Holding every value would make memory grow with the stream, so the ranks are
found by radix selection over the values' IEEE-754 bit patterns, which order like the values
themselves for non-negative floats: each pass over the stream counts, among the values that
share the digits fixed so far, the next 16 bits (65,536 counters per wanted rank), until all
64 bits are known; a bin small enough (``COLLECT_VALUES``) is gathered whole instead and
sorted, which usually ends the search after the second pass.  So memory is a few counters per
rank, never per value, and the percentiles equal ``numpy.percentile`` bit for bit (the same
interpolation, replicated in :func:`numpy_linear_percentile`; a test checks the two agree).

The caller makes the passes: ``feed`` every value of the stream, ``finish_pass``, and repeat
while it answers False.
"""

from __future__ import annotations

import numpy as np

DIGIT_BITS = 16
_DIGITS = 1 << DIGIT_BITS
_DIGIT_MASK = np.uint64(_DIGITS - 1)
#: a bin with at most this many values is gathered and sorted rather than split further
COLLECT_VALUES = 1 << 16


def numpy_linear_percentile(n: int, percent: float, value_at) -> float:
    """``numpy.percentile(values, percent)`` for ``n`` values, given ``value_at(rank)`` (the
    value at a 0-based rank of the sorted values): the same virtual index, the same gamma and
    the same two-sided linear interpolation as numpy's ``_quantile`` / ``_lerp``."""
    q = np.true_divide(np.asarray([percent], dtype=np.float64), 100)
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    gamma = np.asanyarray(virtual - prev, dtype=virtual.dtype)
    lo, hi = _ranks(n, float(virtual[0]))
    a = np.asarray([value_at(lo)], dtype=np.float64)
    b = np.asarray([value_at(hi)], dtype=np.float64)
    diff_b_a = b - a
    out = np.add(a, diff_b_a * gamma)
    np.subtract(b, diff_b_a * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe",
                dtype=type(out.dtype))
    return float(out[0])


def _ranks(n: int, virtual: float) -> tuple[int, int]:
    """The two ranks numpy interpolates between (both the last one past the top)."""
    if virtual >= n - 1:
        return n - 1, n - 1
    lo = int(np.floor(virtual))
    return lo, lo + 1


def wanted_ranks(n: int, percents: tuple[float, ...]) -> list[int]:
    """Every rank the percentiles of ``n`` values need."""
    out: set[int] = set()
    for p in percents:
        virtual = float(((n - 1) * np.true_divide(np.asarray([p], dtype=np.float64), 100))[0])
        out.update(_ranks(n, virtual))
    return sorted(out)


class _Target:
    """The search for the value at one rank: digits fixed so far, rank within their bin."""

    def __init__(self, rank: int) -> None:
        self.rank = rank          # rank among the values whose top bits equal ``prefix``
        self.prefix = 0           # the top ``64 - shift`` bits found so far
        self.shift = 64           # bits still unknown
        self.collect = False      # this pass gathers the bin's values instead of counting
        self.hist = np.zeros(_DIGITS, dtype=np.int64)
        self.gathered: list[np.ndarray] = []
        self.value: float | None = None

    def matches(self, bits: np.ndarray) -> np.ndarray:
        if self.shift >= 64:
            return np.ones(bits.shape[0], dtype=bool)
        return (bits >> np.uint64(self.shift)) == np.uint64(self.prefix)

    def feed(self, bits: np.ndarray) -> None:
        if self.value is not None:
            return
        mine = bits[self.matches(bits)] if self.shift < 64 else bits
        if self.collect:
            self.gathered.append(mine.copy())
            return
        digit = (mine >> np.uint64(self.shift - DIGIT_BITS)) & _DIGIT_MASK
        self.hist += np.bincount(digit.astype(np.int64), minlength=_DIGITS)

    def finish(self) -> None:
        if self.value is not None:
            return
        if self.collect:
            vals = np.sort(np.concatenate(self.gathered)) if self.gathered else np.zeros(0, np.uint64)
            self.value = float(vals[self.rank:self.rank + 1].view(np.float64)[0])
            self.gathered = []
            return
        cum = np.cumsum(self.hist)
        digit = int(np.searchsorted(cum, self.rank, side="right"))
        below = int(cum[digit - 1]) if digit else 0
        in_bin = int(self.hist[digit])
        self.rank -= below
        self.prefix = (self.prefix << DIGIT_BITS) | digit
        self.shift -= DIGIT_BITS
        self.hist[:] = 0
        if self.shift == 0:
            self.value = float(np.asarray([self.prefix], dtype=np.uint64).view(np.float64)[0])
        elif in_bin <= COLLECT_VALUES:
            self.collect = True


class ExactPercentiles:
    """Exact ``numpy.percentile`` of a stream of non-negative floats, over several passes."""

    def __init__(self, percents: tuple[float, ...] = (50, 90, 99)) -> None:
        self.percents = tuple(percents)
        self.n = 0
        self._first = True
        self._top = np.zeros(_DIGITS, dtype=np.int64)  # pass 1: top digits of every value
        self._small: list[np.ndarray] | None = []  # pass 1 keeps a short stream whole
        self._targets: dict[int, _Target] = {}

    def feed(self, values: np.ndarray) -> None:
        """One piece of the stream (in any order and piece size) for the current pass."""
        values = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 would sort after +inf
        if not values.size:
            return
        bits = values.view(np.uint64)
        if self._first:
            if np.any(values < 0) or np.any(np.isnan(values)):
                raise ValueError("ExactPercentiles takes non-negative numbers only")
            self.n += int(values.size)
            if self._small is not None:  # a stream of at most COLLECT_VALUES: sorted at the end
                self._small.append(bits.copy())
                if self.n <= COLLECT_VALUES:
                    return
                bits = np.concatenate(self._small)
                self._small = None
            self._top += np.bincount((bits >> np.uint64(64 - DIGIT_BITS)).astype(np.int64),
                                     minlength=_DIGITS)
            return
        for target in self._targets.values():
            target.feed(bits)

    def finish_pass(self) -> bool:
        """End a pass; True when every percentile is known (else feed the stream again)."""
        if self._first:
            self._first = False
            ranks = wanted_ranks(self.n, self.percents) if self.n else []
            if self._small is not None:  # short: every value is here, one sort
                vals = np.sort(np.concatenate(self._small)) if self._small else None
                for rank in ranks:
                    self._targets[rank] = target = _Target(rank)
                    target.value = float(vals[rank:rank + 1].view(np.float64)[0])
                self._small = None
                return True
            for rank in ranks:
                target = _Target(rank)
                target.hist[:] = self._top
                target.finish()
                self._targets[rank] = target
        else:
            for target in self._targets.values():
                target.finish()
        return all(t.value is not None for t in self._targets.values())

    def result(self) -> dict[float, float | None]:
        """Percent -> value (None for an empty stream)."""
        if not self.n:
            return {p: None for p in self.percents}

        def value_at(rank: int) -> float:
            value = self._targets[rank].value
            assert value is not None, "finish the passes first"
            return value

        return {p: numpy_linear_percentile(self.n, p, value_at) for p in self.percents}


class Spill:
    """Values kept for later passes without holding them in memory: appended to an anonymous
    temporary file (removed when closed, never a file of the user's), read back in pieces.
    The exact percentiles of a value per request (TTFT) need a few passes over the values;
    spilling them costs 8 bytes of disk per request instead of memory."""

    PIECE = 1 << 20

    def __init__(self) -> None:
        import tempfile

        self._fh = tempfile.TemporaryFile()
        self.n = 0

    def append(self, values: np.ndarray) -> None:
        arr = np.ascontiguousarray(values, dtype=np.float64)
        self._fh.write(arr.tobytes())
        self.n += int(arr.size)

    def pieces(self):
        """The values in order, ``PIECE`` at a time."""
        self._fh.flush()
        self._fh.seek(0)
        left = self.n
        while left:
            piece = np.fromfile(self._fh, dtype=np.float64, count=min(left, self.PIECE))
            left -= piece.size
            yield piece
        self._fh.seek(0, 2)

    def percentiles(self, percents: tuple[float, ...]) -> dict[float, float | None]:
        """Exact ``numpy.percentile`` of the spilled values (radix selection over the file)."""
        ep = ExactPercentiles(percents)
        while True:
            for piece in self.pieces():
                ep.feed(piece)
            if ep.finish_pass():
                return ep.result()

    def mean(self) -> float | None:
        """The correctly rounded mean (an exact sum, ``math.fsum``), or None when empty."""
        import math

        if not self.n:
            return None
        return math.fsum(v for piece in self.pieces() for v in piece.tolist()) / self.n

    def close(self) -> None:
        self._fh.close()
