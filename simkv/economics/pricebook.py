"""Price books: YAML files of registered kinds, validated at the edge into frozen books.

A price book is one way of buying prefix reuse (an API's prompt cache, a subscription bucket,
raw storage, your own GPUs).  Its YAML ``kind:`` names an entry of :data:`PRICEBOOK_KINDS`;
each kind pairs a pydantic schema (user-facing validation, errors naming file and field path)
with a frozen book class that knows how to bill a trace (``bills``) and, where it has one, how
to quote storing a prefix for a month (``storage_quotes``).  Adding a kind means registering one
more :class:`Kind`, never editing a switch.  The base definitions live in
:mod:`simkv.economics.book` (re-exported here); this module loads and finds books.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import simkv.economics.kinds  # noqa: F401  (registers the shipped kinds)
from simkv.economics.book import (
    FIGURE_STATUSES,
    FULL_DATE,
    PLACEHOLDER_NOTE,
    PRICEBOOK_KINDS,
    BookSchema,
    FigureSource,
    FigureStatus,
    Kind,
    PriceBook,
    StorageQuote,
    status_of,
)
from simkv.errors import InputError
from simkv.yamlio import read_yaml, validation_error

__all__ = ["FIGURE_STATUSES", "FULL_DATE", "PLACEHOLDER_NOTE", "PRICEBOOK_KINDS", "BookSchema",
           "FigureSource", "FigureStatus", "Kind", "PriceBook", "StorageQuote", "book_from_dict",
           "default_pricebook_dir", "find_book", "load_pricebook", "load_pricebooks", "status_of"]


def book_from_dict(data: Any, *, source: str | Path, default_name: str) -> PriceBook:
    """Validate one price book mapping; errors name ``source`` and the field path."""
    if not isinstance(data, dict):
        raise InputError("a price book must be a YAML mapping with a 'kind' field", source=source)
    if "kind" not in data:
        raise InputError(f"missing field 'kind' (valid: {', '.join(PRICEBOOK_KINDS.names())})",
                         source=source, where="field kind")
    try:
        kind = PRICEBOOK_KINDS.get(str(data["kind"]), where="field kind")
    except InputError as exc:
        raise InputError(exc.detail, source=source, where=exc.where) from None
    try:
        parsed = kind.schema.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source) from None
    except InputError as exc:
        raise InputError(exc.detail, source=source, where=exc.where) from None
    name = parsed.name or default_name
    book = kind.build(parsed, name)
    if parsed.figures:
        book = dataclasses.replace(book, figures=tuple(parsed.figures.items()))
    return book


def load_pricebook(path: str | Path) -> PriceBook:
    """One price book from a YAML file."""
    path = Path(path)
    data = read_yaml(path, "price book")
    return book_from_dict(data, source=path, default_name=path.stem)


def _yaml_files(directory) -> list:
    return sorted((p for p in directory.iterdir()
                   if p.name.endswith((".yaml", ".yml")) and not p.name.startswith(".")),
                  key=lambda p: p.name)


def default_pricebook_dir():
    """The shipped price books (package data ``simkv/data/pricebooks``)."""
    return resources.files("simkv") / "data" / "pricebooks"


def load_pricebooks(directory: str | Path | None = None) -> list[PriceBook]:
    """Every price book in ``directory`` (default: the shipped ones), sorted by file name."""
    if directory is None:
        root = default_pricebook_dir()
        files = _yaml_files(root)
        books = [book_from_dict(yaml.safe_load(f.read_text()), source=f"pricebooks/{f.name}",
                                default_name=f.name.rsplit(".", 1)[0]) for f in files]
    else:
        root = Path(directory)
        if not root.is_dir():
            raise InputError("not a directory of price book YAML files", source=root,
                             where="--pricebooks")
        books = [load_pricebook(f) for f in _yaml_files(root)]
        if not books:
            raise InputError("no *.yaml price books in this directory", source=root,
                             where="--pricebooks")
    seen: dict[str, int] = {}
    for b in books:
        seen[b.name] = seen.get(b.name, 0) + 1
    dups = sorted(n for n, c in seen.items() if c > 1)
    if dups:
        raise InputError(f"price book names must be unique; repeated: {', '.join(dups)}",
                         source=root, where="name")
    return books


def find_book(books: list[PriceBook], ref: str, *, where: str = "--pricebook") -> tuple[PriceBook, str | None]:
    """A book by ``name`` or ``name:variant`` (variant = a tier, medium or TTL option), or a
    YAML path."""
    if ref.endswith((".yaml", ".yml")) and Path(ref).exists():
        return load_pricebook(ref), None
    name, _, variant = ref.partition(":")
    by_name = {b.name: b for b in books}
    if name not in by_name:
        raise InputError(f"unknown price book {name!r} (loaded: {', '.join(sorted(by_name))})",
                         where=where)
    return by_name[name], (variant or None)
