"""The resource guard: one documented memory bound, ``--max-memory SIZE``.

Why: a spec of 10^8 sessions a day, ``--bootstrap 1e9`` or ``--growth 1e12`` used to grow
for a minute to many GB and die with MemoryError (or an out-of-memory kill, losing the
user's shell).  What a spec or option determines up front is estimated before work starts
and refused with the estimate when over the bound; what is known only while reading (unique
blocks in the id map) is checked as it grows.  Both call :func:`check`.

The bound defaults to 80% of the machine's available memory (``MemAvailable`` in
``/proc/meminfo``); the CLI sets it from ``--max-memory`` or ``$SIMKV_MAX_MEMORY`` through
:func:`limit`, a context manager, so library users and tests get no hidden global state.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from contextvars import ContextVar

from simkv.errors import InputError
from simkv.units import format_bytes

DEFAULT_SHARE = 0.8
ENV_VAR = "SIMKV_MAX_MEMORY"
_LIMIT_BYTES: ContextVar[int | None] = ContextVar("simkv_max_memory_bytes", default=None)


class ResourceLimitError(InputError):
    """Work refused because its estimated memory is over the ``--max-memory`` bound."""


def available_bytes() -> int:
    """Memory the system can give without swapping (MemAvailable), else physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def limit_bytes() -> int:
    """The bound in force: the one set by :func:`limit`, else 80% of available memory."""
    value = _LIMIT_BYTES.get()
    return value if value is not None else int(DEFAULT_SHARE * available_bytes())


@contextlib.contextmanager
def limit(max_bytes: int | None) -> Iterator[None]:
    """Run a block under ``max_bytes`` (``None``: the default bound)."""
    token = _LIMIT_BYTES.set(max_bytes)
    try:
        yield
    finally:
        _LIMIT_BYTES.reset(token)


#: Bytes one request and one block access of a Trace take in memory (its columns).
TRACE_BYTES_PER_REQUEST = 64
TRACE_BYTES_PER_BLOCK = 24


def trace_bytes(n_requests: int, n_blocks: int) -> float:
    """Memory of a trace's columns, the unit most estimates are multiples of."""
    return float(n_requests) * TRACE_BYTES_PER_REQUEST + float(n_blocks) * TRACE_BYTES_PER_BLOCK


def check(estimated_bytes: float, what: str) -> None:
    """Refuse work whose estimated memory is over the bound, naming it and the estimate.

    ``what`` says what was estimated and from which input ("--bootstrap 1000000000 over
    5,000 requests"); the message gives the estimate and the bound so the user can either
    shrink the input or raise ``--max-memory``.
    """
    bound = limit_bytes()
    if not estimated_bytes <= bound:  # also refuses NaN
        est = ("an unbounded amount" if not math.isfinite(estimated_bytes) else
               f"about {format_bytes(float(estimated_bytes))}" if estimated_bytes < 1024**5
               else f"about {float(estimated_bytes):.3g} bytes")
        raise ResourceLimitError(
            f"{what} needs {est} of memory, over the --max-memory bound of "
            f"{format_bytes(bound)} (raise --max-memory or make the input smaller)",
            where="--max-memory")
