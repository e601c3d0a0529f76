"""Reading JSON-lines traces (Mooncake, Alibaba, request logs): one place for the checks.

Every reader reports a bad line the same way: the file, ``line N`` and what is wrong with
which field, as one ``InputError`` line.  Blank lines are skipped.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simkv.errors import InputError

#: Larger counts than this are certainly corrupt and would overflow the int64 columns.
MAX_COUNT = 2**62
#: Larger times (ms or s) than this are corrupt (beyond year 30,000 even in ms).
MAX_TIME = 1e15


def json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; bad JSON or non-objects raise."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror}", source=path) from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"line {lineno}"
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"malformed JSON ({exc.msg})", source=path, where=where) from None
            except UnicodeDecodeError:
                raise InputError("not UTF-8 text", source=path, where=where) from None
            except RecursionError:
                raise InputError("malformed JSON (nested too deeply)", source=path,
                                 where=where) from None
            except ValueError as exc:  # an integer of more than 4300 digits
                raise InputError(f"malformed JSON ({str(exc).splitlines()[0][:120]})",
                                 source=path, where=where) from None
            if not isinstance(obj, dict):
                raise InputError("each line must be a JSON object", source=path, where=where)
            yield lineno, obj


def int_field(obj: dict, key: str, path: Path, lineno: int, *, default: int | None = None,
              minimum: int | None = 0) -> int:
    """An integer field (``default`` when absent, if given), at least ``minimum``."""
    where = f"line {lineno}"
    if key not in obj:
        if default is not None:
            return default
        raise InputError(f"missing field {key!r}", source=path, where=where)
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(f"field {key!r} must be an integer, got {v!r:.60}", source=path,
                         where=where)
    if minimum is not None and v < minimum:
        raise InputError(f"field {key!r} must be >= {minimum}, got {v}", source=path, where=where)
    if abs(v) >= MAX_COUNT:
        raise InputError(f"field {key!r} is implausibly large ({v})", source=path, where=where)
    return v


def time_field(obj: dict, key: str, path: Path, lineno: int, unit: str) -> float:
    """A finite, non-negative number (``unit`` names it in the error: ms, seconds)."""
    if key not in obj:
        raise InputError(f"missing field {key!r}", source=path, where=f"line {lineno}")
    t: Any = obj[key]
    if (isinstance(t, bool) or not isinstance(t, int | float)
            or (isinstance(t, float) and not math.isfinite(t)) or t < 0):
        raise InputError(f"field {key!r} must be a number of {unit} >= 0, got {t!r:.60}",
                         source=path, where=f"line {lineno}")
    if t > MAX_TIME:
        shown = f"{t:.4g}" if isinstance(t, float) or t < 10**20 else f"{len(str(t))} digits"
        raise InputError(f"field {key!r} is implausibly large ({shown} {unit})", source=path,
                         where=f"line {lineno}")
    return float(t) if isinstance(t, float) else t


def extend_hash_ids(into: array, obj: dict, input_tokens: int, block_tokens: int, path: Path,
                    lineno: int) -> None:
    """Append the line's ``hash_ids`` to ``into`` after checking their count and range."""
    where = f"line {lineno}"
    ids = obj.get("hash_ids")
    if not isinstance(ids, list):
        raise InputError("field 'hash_ids' must be a list of integers", source=path, where=where)
    expected = -(-input_tokens // block_tokens)
    if len(ids) != expected:
        raise InputError(f"hash_ids has {len(ids)} entries, expected ceil(input_length / "
                         f"{block_tokens}) = {expected}", source=path, where=where)
    try:
        if any(type(v) is bool for v in ids):  # array('Q') would take true as 1
            raise TypeError("bool")
        into.extend(ids)
    except (TypeError, OverflowError):
        raise InputError("hash_ids must hold integers in [0, 2^64)", source=path, where=where) from None
