"""The one exception type that means "the user's input is wrong".

Everything a user hands simkv (a trace, a YAML spec, a price book, a model config, a CLI
argument) is validated at the edge.  When it is wrong we raise :class:`InputError` with a
single line that names the file and the line or field.  The CLI turns it into that line on
stderr and exit status 2, with no traceback; notebook users get an ordinary exception.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: the message is one line naming the file and the line or field."""

    def __init__(self, message: str, *, source: str | Path | None = None,
                 where: str | None = None) -> None:
        parts = []
        if source is not None:
            parts.append(str(source))
        if where is not None:
            parts.append(str(where))
        prefix = ": ".join(parts)
        text = f"{prefix}: {message}" if prefix else message
        super().__init__(" ".join(text.split("\n")))
        self.source = source
        self.where = where
        self.detail = message
