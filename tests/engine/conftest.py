"""One vLLM server per configuration for the whole session (start-up costs ~1-2 minutes)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from harness.launcher import DEFAULT_ENGINE_PYTHON, ENGINE_PYTHON_ENV, EngineStack, ServeOptions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _engine_available() -> bool:
    return Path(os.environ.get(ENGINE_PYTHON_ENV) or DEFAULT_ENGINE_PYTHON).exists()


def _require_engine() -> None:
    """Skip locally without the engine venv; in CI (`make test` builds it) its absence fails."""
    if not _engine_available():
        if os.environ.get("CI"):
            pytest.fail("engine venv missing in CI: `make test` should have built it")
        pytest.skip("engine venv missing: run `make engine`")


@pytest.fixture(scope="session")
def engine_plain():
    """tiny-llama-2l, 8 MiB of KV (64 blocks of 128 tokens): small enough to evict."""
    _require_engine()
    stack = EngineStack(ServeOptions("tiny-llama-2l", port=_free_port(),
                                     kv_cache_bytes=8 * 1024 * 1024))
    with stack:
        yield stack


@pytest.fixture(scope="session")
def engine_lmcache():
    """The same vLLM with an LMCache server behind it (multi-process mode, 1 GB L1)."""
    _require_engine()
    stack = EngineStack(ServeOptions("tiny-llama-2l", port=_free_port(),
                                     kv_cache_bytes=8 * 1024 * 1024, lmcache=True,
                                     lmcache_port=_free_port(), lmcache_http_port=_free_port()))
    with stack:
        yield stack
