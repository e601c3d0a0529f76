"""A named registry that fails loudly (the GuideLLM habit).

Policies, price-book kinds, trace formats, workloads and GPUs register by name; the YAML
``kind:`` or CLI choice is that name.  Registering a name twice is a programming error; asking
for an unknown name is a user error that lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from simkv.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; ``what`` names the family in error messages."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """Register ``item`` under ``name``; usable as a decorator when ``item`` is omitted."""

        def _add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        if item is None:
            return _add
        return _add(item)

    def get(self, name: str, *, where: str | None = None) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items))
            raise InputError(f"unknown {self.what} {name!r} (valid: {valid})", where=where) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
