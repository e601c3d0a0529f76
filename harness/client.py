"""HTTP to the engines: the API key, plain GETs/POSTs, the served model, warm-up and reset.

Standard library only (``urllib``): these calls happen before and after a replay, never on
its timed path (the replay's streaming client is :mod:`harness.replay`).  The API key goes
in a header only, never in a message.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from harness.metrics import MetricsError, Snapshot
from simkv.errors import InputError


def api_key(env: str | None, file: Path | None) -> str | None:
    """The key from ``file`` (first line) or the environment variable ``env``."""
    if file is not None:
        try:
            return file.read_text().strip() or None
        except OSError as exc:
            raise InputError(f"cannot read API key file: {exc.strerror}", source=file) from None
    return os.environ.get(env) if env else None


def http(url: str, *, method: str = "GET", key: str | None = None, body: bytes | None = None,
         timeout_s: float = 10.0) -> str:
    """The response body of one request (raises ``OSError`` subclasses on failure)."""
    data = body if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, method=method, data=data)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
        return resp.read().decode("utf-8", "replace")


def scrape(url: str, key: str | None = None) -> Snapshot:
    """One Prometheus scrape of ``url``."""
    try:
        return Snapshot.parse(http(url, key=key))
    except OSError as exc:
        raise MetricsError(f"cannot scrape {url}: {exc}") from None


def served_model(endpoint: str, key: str | None) -> tuple[str, int | None]:
    """(served model name, its max_model_len) from ``/v1/models``."""
    try:
        data = json.loads(http(f"{endpoint}/v1/models", key=key))["data"][0]
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise InputError(f"no model list at {endpoint}/v1/models ({exc})", where="--endpoint") from None
    return str(data["id"]), data.get("max_model_len")


def warm_and_reset(endpoint: str, model: str, salt: int, key: str | None) -> bool:
    """One throwaway request (its own salt), then reset the prefix caches when the server allows
    (vLLM dev mode; ``reset_external`` clears LMCache too); returns whether the reset happened."""
    body = json.dumps({"model": model, "prompt": [3 + (salt * 7919 + k) % 4000 for k in range(300)],
                       "max_tokens": 2, "ignore_eos": True}).encode()
    http(f"{endpoint}/v1/completions", method="POST", key=key, body=body, timeout_s=600)
    try:
        http(f"{endpoint}/reset_prefix_cache?reset_external=true", method="POST", key=key)
        return True
    except OSError:
        return False
