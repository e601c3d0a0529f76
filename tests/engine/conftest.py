"""One vLLM server per configuration for the whole session (start-up costs ~1-2 minutes)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from harness.engineconfig import EngineConfig
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


#: vLLM's own cache small (6 MiB: 48 blocks of 128 tokens) so LMCache serves many hits, and
#: LMCache's L1 small enough to evict: 0.02 GiB = 81 chunks of 256 tokens x 1 KiB
LMCACHE_SMALL = EngineConfig("tiny-llama-2l", kv_cache_bytes=6 * 1024 * 1024, lmcache=True,
                             lmcache_l1_gb=0.02)


@pytest.fixture(scope="session")
def engine_lmcache(tmp_path_factory):
    """The same vLLM with an LMCache server behind it (multi-process mode, an evicting L1);
    yields (stack, engine config path) as ``serve --engine-config-out`` would write it."""
    _require_engine()
    cfg_path = tmp_path_factory.mktemp("engine") / "engine.json"
    LMCACHE_SMALL.save(cfg_path)
    stack = EngineStack(LMCACHE_SMALL.serve_options(port=_free_port(), lmcache_port=_free_port(),
                                                    lmcache_http_port=_free_port()))
    with stack:
        yield stack, cfg_path
