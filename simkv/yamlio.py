"""Reading the user's YAML files (workload specs, price books, tiers, levels, calibrations).

One place turns a missing file, bad YAML or a pydantic validation error into the one-line
``InputError`` that names the file and the line or field path, so every YAML the user writes
fails the same way.  The loader is PyYAML's safe loader made strict: a key given twice in a
mapping is an error naming the key and both lines (PyYAML silently keeps the last), deep
nesting is refused before it exhausts the stack, and alias expansion is capped (a
"billion laughs" document would otherwise make validation run for hours).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from simkv.errors import InputError
from simkv.validate import input_file

MAX_DEPTH = 100
MAX_ALIASES = 1000
MAX_NODES = 1_000_000


def _marked(problem: str, mark: Any) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(problem=problem, problem_mark=mark)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, deep nesting and alias bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _marked(f"more than {MAX_ALIASES} aliases", self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _marked(f"nested more than {MAX_DEPTH} deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key ([a, b]: 1); the base class reports it
                continue
            if first is not None:
                raise _marked(f"duplicate key {key!r:.60} (first given on line {first})",
                              key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int:
    """PyYAML's int, but a number of more than 4300 digits is a marked YAML error."""
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:
        raise _marked(f"an integer of {len(node.value):,} characters is too long",
                      node.start_mark) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """Nodes the document has once every alias is expanded (shared nodes counted each time)."""
    if id(node) in memo:
        return memo[id(node)]
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(v, memo) for v in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size
    return size


def _load(text: str) -> Any:
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise _marked(f"more than {MAX_NODES:,} values once aliases are expanded",
                          node.start_mark)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed document; ``what`` names the kind of file in errors ("price book", ...)."""
    path = input_file(path, what)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} not found", source=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {what} (not UTF-8 text at byte {exc.start})",
                         source=path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} ({exc.strerror or exc})", source=path) from None
    try:
        return _load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"malformed YAML ({problem})", source=path, where=where) from None
    except RecursionError:
        raise InputError(f"malformed YAML (nested more than {MAX_DEPTH} deep)",
                         source=path) from None


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
