"""Tokenizers for the request-log importer: text -> token ids, deterministically.

:class:`BuiltinTokenizer` (no vocabulary file) is the default; :class:`HFTokenizer` reads a
local ``tokenizer.json`` through the optional ``tokenizers`` package.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from simkv.errors import InputError
from simkv.hashing import blake2b_key


class Tokenizer(Protocol):
    """Turns text into token ids (deterministically)."""

    name: str

    def encode(self, text: str) -> list[int]: ...


class BuiltinTokenizer:
    """A deterministic approximation of a BPE tokenizer (no vocabulary file needed).

    Text is split into words, single punctuation marks and whitespace runs; words longer than
    4 characters are cut into 4-character pieces (about 4 characters per token for English, as
    BPE tokenizers average); each piece's id is a 32-bit blake2b of its text.  Equal text
    gives equal ids, so shared prefixes are found exactly; counts are approximate.
    """

    name = "builtin"
    _PIECES = re.compile(r"\w+|[^\w\s]|\s+")

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def _id(self, piece: str) -> int:
        v = self._cache.get(piece)
        if v is None:
            v = blake2b_key(piece.encode(), 4)
            if len(self._cache) < 1_000_000:
                self._cache[piece] = v
        return v

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for m in self._PIECES.finditer(text):
            piece = m.group(0)
            if len(piece) <= 4:
                out.append(self._id(piece))
            else:
                out.extend(self._id(piece[i:i + 4]) for i in range(0, len(piece), 4))
        return out


class HFTokenizer:
    """A local ``tokenizer.json`` through the optional ``tokenizers`` package."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        try:
            from tokenizers import Tokenizer as _HF
        except ImportError:
            raise InputError("the 'tokenizers' package is not installed (pip install tokenizers), "
                             "so a tokenizer.json cannot be used", where="--tokenizer") from None
        if not path.is_file():
            raise InputError("tokenizer file not found", source=path, where="--tokenizer")
        try:
            self._tok = _HF.from_file(str(path))
        except Exception as exc:  # the Rust library raises its own exception types
            raise InputError(f"not a tokenizer.json ({exc})", source=path,
                             where="--tokenizer") from None
        self.name = path.name

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)


def get_tokenizer(spec: str | Path | Tokenizer | None) -> Tokenizer:
    """None or "builtin" -> the built-in approximation; a path -> a tokenizer.json."""
    if spec is None or (isinstance(spec, str) and spec == "builtin"):
        return BuiltinTokenizer()
    if isinstance(spec, str | Path):
        return HFTokenizer(spec)
    return spec
