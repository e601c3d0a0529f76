"""Deterministic matplotlib figures, embedded in the report as base64 PNG.

Every figure is drawn with the Agg backend inside an ``rc_context`` (no global state is left
behind) and saved with the PNG metadata that would carry a version or a date removed, so that
the same data always gives the same bytes (``make verify-repro`` compares them).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: rcParams for every report figure (fixed sizes, fonts and hash salt: reproducible output).
STYLE: dict[str, Any] = {
    "figure.figsize": (7.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "simkv-report",
    "path.simplify": False,
}

#: PNG text chunks matplotlib would otherwise fill (``Software`` names its version).
PNG_METADATA = {"Software": None}

#: Basis of a figure's numbers, as its caption states it.
BASES = ("modelled", "measured", "measured and modelled")


@dataclass(frozen=True)
class Figure:
    """One embedded figure: its number, caption, data file and whether it is modelled/measured."""

    id: str
    title: str
    caption: str
    data_file: str
    basis: str
    png: bytes

    @property
    def png_b64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")

    @property
    def full_caption(self) -> str:
        return f"{self.caption} Numbers: {self.basis}. Data: {self.data_file}."


def _pyplot():
    """pyplot, on the non-interactive Agg backend unless the caller (a notebook) already chose
    one: figures are only saved to PNG, so any backend will do and the user's is left alone."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
               **kw) -> Iterator[tuple[Any, Any]]:
    """``with new_figure() as (fig, ax): ...`` under the report style; closed afterwards."""
    plt = _pyplot()
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig, ax = plt.subplots(nrows, ncols, figsize=figsize or STYLE["figure.figsize"], **kw)
        try:
            yield fig, ax
        finally:
            plt.close(fig)


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes without any date or version in its metadata."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.tight_layout()
        fig.savefig(buf, format="png", metadata=PNG_METADATA)
    return buf.getvalue()
