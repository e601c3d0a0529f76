"""Reading the user's YAML files (workload specs, price books, tiers, levels, calibrations).

One place turns a missing file, bad YAML or a pydantic validation error into the one-line
``InputError`` that names the file and the line or field path, so every YAML the user writes
fails the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from simkv.errors import InputError


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed document; ``what`` names the kind of file in errors ("price book", ...)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} not found", source=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InputError(f"cannot read {what} ({reason})", source=path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"malformed YAML ({problem})", source=path, where=where) from None


def field_path(loc: tuple) -> str:
    """pydantic's error location as ``a.b[2].c``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _message(err: dict) -> str:
    t, ctx = err["type"], err.get("ctx") or {}
    bounds = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
              "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}
    if t in bounds:
        op, key = bounds[t]
        return f"must be {op} {_num(ctx[key])}"
    fixed = {"extra_forbidden": "unknown key", "missing": "required key is missing",
             "too_short": "must not be empty", "finite_number": "must be a finite number"}
    if t in fixed:
        return fixed[t]
    return str(err["msg"]).removeprefix("Value error, ")


def validation_error(exc: ValidationError, source: str | Path) -> InputError:
    """The first validation problem as one line naming the file and the field path."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    more = (f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
            if len(errors) > 1 else "")
    return InputError(f"{_message(first)}{more}", source=source,
                      where=f"field {field_path(first['loc'])}")
