"""The one place the report reaches into the other parts of simkv (and the harness).

Each function here calls a public function of another package.  When that function is not in
this build (a part still being written, an optional extra not installed), :func:`need` raises
:class:`~simkv.report.model.Missing` naming it, and the section that needed it says so plainly
instead of showing a number.  Only a missing *name* is treated that way; an error inside a
function that exists propagates.
"""

from __future__ import annotations

import importlib
from typing import Any

from simkv.report.model import Missing


def need(module: str, attr: str | None = None) -> Any:
    """``module.attr`` (or the module), or :class:`Missing` if this build lacks it."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise Missing(f"{module} is not in this build") from None
        raise
    if attr is None:
        return mod
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise Missing(f"{module}.{attr} is not in this build") from None


def first_available(*candidates: tuple[str, str]) -> Any:
    """The first of several ``(module, attr)`` that exists; :class:`Missing` naming them all."""
    tried = []
    for module, attr in candidates:
        try:
            return need(module, attr)
        except Missing:
            tried.append(f"{module}.{attr}")
    raise Missing(f"none of {', '.join(tried)} is in this build")
