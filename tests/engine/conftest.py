"""One vLLM server per configuration for the whole session (start-up costs ~1-2 minutes)."""

from __future__ import annotations

import socket

import pytest

from harness.launcher import DEFAULT_ENGINE_PYTHON, ENGINE_PYTHON_ENV, EngineStack, ServeOptions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _engine_available() -> bool:
    import os
    from pathlib import Path

    return Path(os.environ.get(ENGINE_PYTHON_ENV) or DEFAULT_ENGINE_PYTHON).exists()


@pytest.fixture(scope="session")
def engine_plain():
    """tiny-llama-2l, 8 MiB of KV (64 blocks of 128 tokens): small enough to evict."""
    if not _engine_available():
        pytest.skip("engine venv missing: run `make engine`")
    stack = EngineStack(ServeOptions("tiny-llama-2l", port=_free_port(),
                                     kv_cache_bytes=8 * 1024 * 1024))
    with stack:
        yield stack


@pytest.fixture(scope="session")
def engine_lmcache():
    """The same vLLM with an LMCache server behind it (multi-process mode, 1 GB L1)."""
    if not _engine_available():
        pytest.skip("engine venv missing: run `make engine`")
    stack = EngineStack(ServeOptions("tiny-llama-2l", port=_free_port(),
                                     kv_cache_bytes=8 * 1024 * 1024, lmcache=True,
                                     lmcache_port=_free_port(), lmcache_http_port=_free_port()))
    with stack:
        yield stack
