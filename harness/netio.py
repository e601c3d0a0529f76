"""Plain HTTP calls of the harness (model list, warm-up, reset, /metrics) and redaction.

Why: every HTTP or network fault (a refused connection, a timeout, a 401, a 404 for a
missing /metrics, a body that is not text) must be one line naming the URL and what was
wrong, never a traceback; and no credential may reach anything stored or printed, even when
a server echoes the Authorization header back in an error body.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request

from simkv.errors import InputError

#: Error bodies are cut to this many characters before they reach a message or a record.
BODY_CHARS = 300
#: Responses larger than this are refused (a /metrics page is a few hundred kB at most).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_BEARER = re.compile(r"(?i)(bearer|token|api[-_ ]?key|authorization)([\"':= ]+)[A-Za-z0-9._~+/=-]{4,}")


class EndpointError(InputError):
    """An endpoint did not answer as a vLLM / LMCache server should (one line, names the URL)."""


def redact(text: str, key: str | None = None) -> str:
    """``text`` with the API key and anything that looks like a bearer token replaced."""
    if key:
        text = text.replace(key, "***")
    return _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def _cut(text: str) -> str:
    return " ".join(text.split())[:BODY_CHARS]


def request_text(url: str, *, method: str = "GET", data: bytes | None = None,
                 key: str | None = None, timeout_s: float = 10.0,
                 headers: dict[str, str] | None = None) -> str:
    """The response body as text; any fault raises :class:`EndpointError` naming the URL."""
    check_url(url)
    req = urllib.request.Request(url, method=method, data=data)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - user's URL
            body = resp.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        try:
            detail = exc.read(BODY_CHARS * 4).decode("utf-8", "replace")
        except OSError:
            detail = ""
        hint = " (check the API key)" if exc.code in (401, 403) else ""
        more = f": {redact(_cut(detail), key)}" if detail.strip() else ""
        raise EndpointError(f"{method} {url} answered HTTP {exc.code} {exc.reason}{hint}{more}") from None
    except urllib.error.URLError as exc:
        raise EndpointError(f"cannot reach {url} ({_reason(exc.reason)})") from None
    except TimeoutError:
        raise EndpointError(f"{url} did not answer within {timeout_s:g} s") from None
    except (OSError, ValueError) as exc:  # connection reset mid-body; a URL urllib cannot use
        raise EndpointError(f"cannot use {url!r:.200} ({_reason(exc)})") from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise EndpointError(f"{url} sent more than {MAX_RESPONSE_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise EndpointError(f"{url} answered with bytes that are not UTF-8 text") from None


def check_url(url: str, where: str = "--endpoint") -> str:
    """``url`` if it is an http(s) URL with a host; else one line saying what it is not."""
    parts = urllib.parse.urlsplit(url) if len(url) <= 2048 else None
    try:
        port_ok = parts is not None and (parts.port is None or parts.port > 0)
    except ValueError:  # a port that is not a number or beyond 65535
        port_ok = False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise EndpointError(f"not an http(s) URL with a host and port: {url[:100]!r} "
                            "(example: http://127.0.0.1:8000)", where=where)
    return url


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return " ".join(str(reason).split())[:200] or type(reason).__name__
