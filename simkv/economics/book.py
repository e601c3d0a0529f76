"""What every price book is: its user-facing schema fields, per-figure sources, the book
interface, storage quotes, and the registry of kinds (:data:`PRICEBOOK_KINDS`).

The kinds (:mod:`simkv.economics.kinds`) import this module to register themselves; the loader
(:mod:`simkv.economics.pricebook`) imports the kinds.  Keeping the two apart means no import
cycle between the registry and the modules that fill it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field

from simkv.registry import Registry
from simkv.validate import UserModel

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
