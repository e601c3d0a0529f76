"""HTTP to the engines: the API key, plain GETs/POSTs, the served model, warm-up and reset.

Standard library only (``urllib``, through :mod:`harness.netio`): these calls happen before and after a replay, never on
its timed path (the replay's streaming client is :mod:`harness.replay`).  The API key goes
in a header only, never in a message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.metrics import MetricsError, Snapshot
from harness.metrics import served_model as parse_served_model
from harness.netio import EndpointError, request_text
from simkv.errors import InputError
from simkv.validate import input_file

#: An API key file longer than this is not a key (and a device would be read forever).
MAX_KEY_CHARS = 4096


def api_key(env: str | None, file: Path | None) -> str | None:
    """The key from ``file`` (first line) or the environment variable ``env``."""
    if file is not None:
        input_file(file, "API key file", where="--api-key-file")
        try:
            return file.read_text(encoding="utf-8")[:MAX_KEY_CHARS + 1].strip() or None
        except OSError as exc:
            raise InputError(f"cannot read API key file: {exc.strerror}", source=file) from None
        except UnicodeDecodeError:
            raise InputError("API key file is not UTF-8 text", source=file) from None
    return os.environ.get(env) if env else None


def http(url: str, *, method: str = "GET", key: str | None = None, body: bytes | None = None,
         timeout_s: float = 10.0) -> str:
    """The response body of one request; any fault is an EndpointError naming the URL."""
    data = body if body is not None else (b"" if method == "POST" else None)
    headers = {"Content-Type": "application/json"} if body is not None else None
    return request_text(url, method=method, data=data, key=key, timeout_s=timeout_s,
                        headers=headers)


def scrape(url: str, key: str | None = None) -> Snapshot:
    """One Prometheus scrape of ``url`` (a fault or non-Prometheus text: MetricsError)."""
    try:
        text = http(url, key=key)
    except EndpointError as exc:
        raise MetricsError(exc.detail) from None
    return Snapshot.parse(text, source=url)


def served_model(endpoint: str, key: str | None) -> tuple[str, int | None]:
    """(served model name, its max_model_len) from ``/v1/models``."""
    url = f"{endpoint}/v1/models"
    return parse_served_model(url, http(url, key=key))


def warm_and_reset(endpoint: str, model: str, salt: int, key: str | None) -> bool:
    """One throwaway request (its own salt), then reset the prefix caches when the server allows
    (vLLM dev mode; ``reset_external`` clears LMCache too); returns whether the reset happened."""
    body = json.dumps({"model": model, "prompt": [3 + (salt * 7919 + k) % 4000 for k in range(300)],
                       "max_tokens": 2, "ignore_eos": True}).encode()
    http(f"{endpoint}/v1/completions", method="POST", key=key, body=body, timeout_s=600)
    try:
        http(f"{endpoint}/reset_prefix_cache?reset_external=true", method="POST", key=key)
        return True
    except EndpointError:
        return False
