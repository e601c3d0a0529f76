"""One validation layer for every number a user hands simkv (CLI options and file fields).

Why: a hostile corpus found NaN, inf, 1e300, 10^20, -1 and ``true`` accepted as numbers and
crashing deep inside a kernel, or silently meaning "default".  Every number now passes one
check at the edge: finite, in range, integral where it must be, within int64 where a kernel
needs it, a bool never taken as a number, and the field's name in the message.

- CLI options: :data:`OPTION_BOUNDS` declares each numeric option's bounds once, by name,
  for every command of ``simkv`` and ``simkv-harness`` alike; :func:`harden` attaches the
  check to every int/float option of a click command tree, so an option added later is
  checked (finite, non-negative, int64) even before it is given tighter bounds here.
- File fields: :class:`UserModel` is the pydantic base of every user-facing schema: NaN and
  inf are refused, and a YAML ``true`` is never read as ``1``.  :func:`check_number` is the
  same check for hand-written readers (JSON lines, config.json, Parquet metadata).
"""

from __future__ import annotations

import math
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from simkv.errors import InputError

INT64_MAX = 2**63 - 1
#: Counts (tokens, blocks, requests) larger than this are corrupt: they overflow int64 sums.
MAX_COUNT = 2**53
#: The largest float simkv takes anywhere (beyond it sums and products overflow to inf).
MAX_FLOAT = 1e15


@dataclass(frozen=True)
class Bound:
    """Bounds of one number: ``lo``/``hi`` inclusive unless ``lo_open``/``hi_open``."""

    lo: float = 0
    hi: float = MAX_FLOAT
    integral: bool = False
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"in {left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}"


def _fmt(v: float) -> str:
    if v == 2**62 or v == 2**63 - 1:
        return "2^62" if v == 2**62 else "2^63 - 1"
    if isinstance(v, int) or float(v).is_integer() and abs(v) < 1e16:
        return f"{int(v):,}" if abs(v) >= 10**6 else str(int(v))
    return f"{v:g}"


def count(lo: int = 0, hi: int = MAX_COUNT) -> Bound:
    return Bound(lo, hi, integral=True)


def real(lo: float = 0.0, hi: float = MAX_FLOAT, *, lo_open: bool = False,
         hi_open: bool = False) -> Bound:
    return Bound(lo, hi, lo_open=lo_open, hi_open=hi_open)


SHARE = real(0.0, 1.0)
PORT = count(1, 65535)
DEFAULT_INT = count(0, INT64_MAX)
DEFAULT_FLOAT = real(0.0, MAX_FLOAT)

#: Bounds of every numeric CLI option, declared once by option name for all commands.
OPTION_BOUNDS: dict[str, Bound] = {
    # simkv
    "--capacity-blocks": count(0, 2**62),
    "--blend-recompute-share": SHARE,
    "--replicas": count(1, 100_000),
    "--tp": count(1, 1024),
    "--holdout": real(0.0, 1.0, hi_open=True),
    "--seed": count(0, INT64_MAX),
    "--prefix-tokens": count(1, 10**9),
    "--per-day": real(0.0, 1e12),
    "--usd-per-mtok": real(0.0, 1e6),
    "--days-per-month": real(1.0, 31.0),
    "--bootstrap": count(0, 1_000_000),
    "--target-share": real(0.0, 1.0, lo_open=True),
    "--ttft-slo-p90-s": real(0.0, 1e6, lo_open=True),
    "--hbm-chunk": count(1, 2**20),
    "--chunk": count(1, 2**20),
    "--sample-interval-s": real(0.0, 1e10, lo_open=True),
    "--days": real(0.0, 36_500.0, lo_open=True),
    "--hours": real(0.0, 876_000.0, lo_open=True),
    "--block-tokens": count(1, 2**20),
    "--sample-rate": real(0.0, 1.0, lo_open=True),
    "--parts": count(1, 10_000),
    "--factor": real(0.0, 1e6, lo_open=True),
    "--output-factor": real(0.0, 1e6),
    "--time-factor": real(0.0, 1e6),
    "--start-s": real(0.0, 1e12),
    "--end-s": real(0.0, 1e12),
    "--sessions": count(1, 2**62),
    # simkv-harness
    "--block-size": count(1, 2**20),
    "--port": PORT,
    "--lmcache-port": PORT,
    "--lmcache-http-port": PORT,
    "--max-model-len": count(1, 2**24),
    "--lmcache-l1-gb": real(0.0, 1e6, lo_open=True),
    "--time-scale": real(0.0, 1000.0),
    "--concurrency": count(1, 1_000_000),
    "--max-requests": count(1, 2**62),
    "--max-tokens": count(1, 2**24),
    "--output-scale": real(0.0, 100.0),
    "--vocab": count(2, 2**31 - 1),
    "--salt": count(0, INT64_MAX),
    "--timeout-s": real(0.0, 1e6, lo_open=True),
    "--lmcache-chunk-tokens": count(1, 2**20),
    "--token-budget": count(1, 2**24),
}


def check_number(value: Any, bound: Bound, where: str, *, source: Any = None) -> int | float:
    """``value`` if it is a number within ``bound``; else InputError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an integer" if bound.integral else "a number"
        raise InputError(f"must be {kind}, got {value!r:.60}", source=source, where=where)
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"must be a finite number, got {value}", source=source, where=where)
    if bound.integral and not (isinstance(value, int) or value.is_integer()):
        raise InputError(f"must be a whole number, got {value}", source=source, where=where)
    shown = _shown(value)
    if value <= bound.lo if bound.lo_open else value < bound.lo:
        op, lo = (">" if bound.lo_open else ">="), bound.lo
        if bound.integral and lo == 1 and not bound.lo_open:  # "a positive integer"
            op, lo = ">", 0
        raise InputError(f"must be {op} {_fmt(lo)}, got {shown}", source=source, where=where)
    if value >= bound.hi if bound.hi_open else value > bound.hi:
        op = "<" if bound.hi_open else "<="
        raise InputError(f"must be {op} {_fmt(bound.hi)}, got {shown}", source=source,
                         where=where)
    return int(value) if bound.integral else value


def _shown(value: int | float) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if abs(value) <= 10**12:
        return str(value)
    if value.bit_length() < 1000:
        return f"{float(value):.4g}"
    return f"an integer of {value.bit_length()} bits"


def bound_for(param_name: str, annotation: Any) -> Bound:
    """The declared bound of an option, else the default for its type."""
    if param_name in OPTION_BOUNDS:
        return OPTION_BOUNDS[param_name]
    return DEFAULT_INT if annotation is int else DEFAULT_FLOAT


def _option_check(where: str, bound: Bound, original: Callable | None) -> Callable:
    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is not None:
            values = value if isinstance(value, list | tuple) else [value]
            for v in values:
                check_number(v, bound, where)
        return original(ctx, param, value) if original is not None else value

    callback.simkv_checked = True  # type: ignore[attr-defined]
    return callback


def numeric_params(command: Any) -> list[tuple[str, Any, Any]]:
    """(command path, option name, parameter) for every int/float parameter in the tree."""
    out: list[tuple[str, Any, Any]] = []

    def walk(cmd: Any, path: str) -> None:
        for p in cmd.params:
            desc = getattr(p, "type_descriptor", None)
            ann = getattr(desc, "annotation", None)
            if ann in (int, float) and not getattr(p, "is_flag", False):
                name = max(p.opts, key=len) if p.opts else p.name
                out.append((path, name, p))
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {sub_name}")

    walk(command, command.name or "")
    return out


def harden(command: Any) -> Any:
    """Attach the checks to a click command tree: bounds on every int/float parameter, a
    length check on every path (a name too long for the filesystem is one line, not an
    ``OSError`` from whichever ``exists()`` meets it first)."""
    for _, name, param in numeric_params(command):
        if getattr(param.callback, "simkv_checked", False):
            continue
        ann = param.type_descriptor.annotation
        param.callback = _option_check(name, bound_for(name, ann), param.callback)
    for _, name, param in path_params(command):
        if not getattr(param.callback, "simkv_checked", False):
            param.callback = _path_check(name, param.callback)
    return command


def path_params(command: Any) -> list[tuple[str, Any, Any]]:
    """(command path, option name, parameter) for every Path parameter in the tree."""
    out: list[tuple[str, Any, Any]] = []

    def walk(cmd: Any, path: str) -> None:
        for p in cmd.params:
            ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
            if ann is Path:
                out.append((path, max(p.opts, key=len) if p.opts else p.name.upper(), p))
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {sub_name}")

    walk(command, command.name or "")
    return out


#: POSIX limits of Linux filesystems: a whole path and one name in it.
PATH_MAX_CHARS = 4096
NAME_MAX_BYTES = 255


def check_path_text(text: Any, where: str) -> None:
    """A path the filesystem can take at all (else ``exists()`` raises ENAMETOOLONG)."""
    s = str(text)
    if "\x00" in s:
        raise InputError("a path cannot contain a NUL character", where=where)
    long_part = max((len(part.encode("utf-8", "surrogateescape")) for part in s.split("/")),
                    default=0)
    if len(s) > PATH_MAX_CHARS or long_part > NAME_MAX_BYTES:
        raise InputError(f"path too long for the filesystem ({len(s):,} characters; a name may "
                         f"have {NAME_MAX_BYTES} bytes)", where=where)


def _path_check(where: str, original: Callable | None) -> Callable:
    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is not None:
            for v in value if isinstance(value, list | tuple) else [value]:
                check_path_text(v, where)
        return original(ctx, param, value) if original is not None else value

    callback.simkv_checked = True  # type: ignore[attr-defined]
    return callback


def _mentions_bool(annotation: Any) -> bool:
    return "bool" in repr(annotation)


class UserModel(BaseModel):
    """Base of every user-facing pydantic schema: no NaN/inf, no bool read as a number."""

    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or _mentions_bool(field.annotation):
            return value
        items = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, bool) for v in items):
            raise ValueError("must be a number or text, not true/false")
        return value


def input_file(path: Any, what: str, *, where: str | None = None) -> Any:
    """``path`` if it names a readable regular file; else InputError naming it.

    Why: an input that is a directory, a missing path, a name too long for the filesystem or
    a device (``/dev/full``, ``/dev/zero`` read forever) must be one clear line, not a
    traceback or a read that never ends.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{what} not found", source=p, where=where) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} ({exc.strerror or exc})", source=_cut(p),
                         where=where) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"is a directory, not a {what}", source=p, where=where)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"not a regular file (give the {what} as a file)", source=p, where=where)
    return p


def _cut(path: Any) -> str:
    s = str(path)
    return s if len(s) <= 200 else s[:197] + "..."
