"""A hash of the code a stage runs: the source of every module its module imports, transitively.

The import graph is read with ``ast`` (module-level and function-level imports alike), never by
importing anything, and followed inside the given top-level packages (``simkv``, plus a
plug-in's own, e.g. ``harness``).  Data files (price books, templates) are not code: stages
that read them declare them as inputs instead, so editing a price book reruns only those.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

_SRC_ROOT = Path(__file__).resolve().parents[1]


def module_path(name: str, root: Path = _SRC_ROOT) -> Path | None:
    """The source file of dotted module ``name`` under ``root`` (a package's ``__init__.py``)."""
    base = root.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


@cache
def _imported(path: Path, name: str) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{parent}.{node.module}" if node.module else parent
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return frozenset(out)


def closure(module: str, roots: tuple[str, ...] = ("simkv",), root: Path = _SRC_ROOT) -> dict[str, Path]:
    """Every module reachable from ``module`` inside ``roots`` (and each one's parent packages)."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] not in roots:
            continue
        path = module_path(name, root)
        if path is None:
            continue
        seen[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_imported(path, name))
    return seen


@cache
def code_sha256(module: str, roots: tuple[str, ...] = ("simkv",), root: Path = _SRC_ROOT) -> str:
    """SHA-256 over (module name, source bytes) of :func:`closure`, in sorted order."""
    h = hashlib.sha256()
    for name, path in sorted(closure(module, roots, root).items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
