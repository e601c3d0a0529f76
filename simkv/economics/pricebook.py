"""Price books: YAML files of registered kinds, validated at the edge into frozen books.

A price book is one way of buying prefix reuse (an API's prompt cache, a subscription bucket,
raw storage, your own GPUs).  Its YAML ``kind:`` names an entry of :data:`PRICEBOOK_KINDS`;
each kind pairs a pydantic schema (user-facing validation, errors naming file and field path)
with a frozen book class that knows how to bill a trace (``bills``) and, where it has one, how
to quote storing a prefix for a month (``storage_quotes``).  Adding a kind means registering one
more :class:`Kind`, never editing a switch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError

from simkv.errors import InputError
from simkv.registry import Registry
from simkv.validate import UserModel
from simkv.yamlio import read_yaml, validation_error

if TYPE_CHECKING:  # pragma: no cover
    from simkv.economics.bill import Bill
    from simkv.economics.context import BillContext

#: Statement attached to any output that shows a placeholder figure.
PLACEHOLDER_NOTE = ("PLACEHOLDER figures (not published prices): replace them with your own "
                    "in a price book YAML")


#: A full date, as every price's ``as_of`` must give it (a year alone cannot be re-checked).
FULL_DATE = r"^\d{4}-\d{2}-\d{2}$"

#: How a figure is known.  ``published``: read on the provider's own page; ``secondary``: a
#: third-party page quoting the provider; ``derived``: computed from published figures (e.g.
#: a multiplier times a base price); ``assumption``: no public figure, a stated modelling
#: choice; ``placeholder``: no public figure exists, replace it with yours.
FIGURE_STATUSES = ("published", "secondary", "derived", "assumption", "placeholder")
FigureStatus = Literal["published", "secondary", "derived", "assumption", "placeholder"]


class FigureSource(UserModel):
    """Where one figure of a book comes from: a URL, the date it was read, how it is known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1)
    as_of: str = Field(pattern=FULL_DATE)
    status: FigureStatus = "published"
    note: str = ""


class BookSchema(UserModel):
    """Fields every price book has; kinds extend it.  Unknown fields are errors (typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    name: str | None = None
    description: str = ""
    source: str = ""
    as_of: str = Field("", pattern=r"^$|" + FULL_DATE)
    placeholder: bool = False
    notes: list[str] = []
    #: per figure (a field name of the book, e.g. ``input_usd_per_mtok``): its source
    figures: dict[str, FigureSource] = {}


def status_of(placeholder: bool, figures) -> str:
    """``placeholder`` if any figure is one (or the book says so), ``derived`` if any figure is
    not read on the provider's own page, else ``published``.  ``figures``: FigureSource values
    (or a mapping / pairs of name and FigureSource)."""
    if isinstance(figures, dict):
        figures = figures.values()
    items = [f[1] if isinstance(f, tuple) else f for f in figures]
    if placeholder or any(f.status == "placeholder" for f in items):
        return "placeholder"
    if any(f.status != "published" for f in items):
        return "derived"
    return "published"


@dataclass(frozen=True)
class StorageQuote:
    """What keeping a prefix of ``tokens`` tokens stored for one month, and reading it back
    ``reads_per_month`` times, costs under a book.

    ``monthly_usd`` is the whole store-and-read charge; ``components_usd`` splits it
    (``storage_usd``, ``read_usd``, ``write_usd``, ``requests_usd``, ``egress_usd``);
    ``load_s`` is the time one read takes at the medium's bandwidth (None: not known).
    """

    book: str
    variant: str
    monthly_usd: float
    basis: str
    placeholder: bool = False
    components_usd: tuple[tuple[str, float], ...] = ()
    load_s: float | None = None
    status: str = "published"


class PriceBook:
    """Interface of a built book (frozen dataclasses in :mod:`simkv.economics.kinds`)."""

    name: str
    kind: str
    source: str
    as_of: str
    placeholder: bool
    figures: tuple[tuple[str, FigureSource], ...] = ()
    #: whether a chunk-reuse (CacheBlend-style) cache can be bought this way; provider prompt
    #: caches are prefix caches, so only self-managed stores say yes.
    supports_chunk: bool = False

    def bills(self, ctx: BillContext) -> list[Bill]:  # pragma: no cover - interface
        raise NotImplementedError

    def storage_quotes(self, tokens: int, kv_bytes: float, days: float, *,
                       reads_per_month: float = 0.0) -> list[StorageQuote]:
        """Monthly store-and-read quotes for a prefix; empty for kinds with no storage charge."""
        return []

    def status(self, variant: str | None = None) -> str:
        """``published``, ``derived`` or ``placeholder`` (see :func:`status_of`)."""
        return status_of(self.placeholder, self.figures)


@dataclass(frozen=True)
class Kind:
    """A registered price-book kind: its schema and the function building a book from it."""

    schema: type[BookSchema]
    build: Callable[[Any, str], PriceBook]
    summary: str


PRICEBOOK_KINDS: Registry[Kind] = Registry("price book kind")


def book_from_dict(data: Any, *, source: str | Path, default_name: str) -> PriceBook:
    """Validate one price book mapping; errors name ``source`` and the field path."""
    import simkv.economics.kinds  # noqa: F401  (registers the shipped kinds)

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
