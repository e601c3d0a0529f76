"""Start vLLM (and an LMCache server in multi-process mode) from the engine venv; stop them.

The engine lives in its own virtual environment (``.venv-engine/``, ``make engine``) since vLLM
pins torch, numpy and protobuf; the harness only starts its interpreter and talks HTTP.  Each
server runs in its own process group with ``TMPDIR`` pointing at a private run directory, so
stopping means: SIGTERM to the group, SIGKILL after a timeout, then removing the run directory
(with any socket files the servers left).  Flags follow what worked on a CPU-only machine
(``docs/engine-on-cpu.md``): eager mode, ``--load-format dummy``, an explicit KV cache size.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from harness.machine import proc_stat
from harness.modeldir import resolve_config, write_model_dir
from simkv.errors import InputError

ENGINE_PYTHON_ENV = "SIMKV_ENGINE_PYTHON"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENGINE_PYTHON = REPO_ROOT / ".venv-engine" / "bin" / "python"
SERVED_MODEL_NAME = "tiny"


class EngineError(RuntimeError):
    """A server failed to start, died, or did not answer in time."""


def find_engine_python(explicit: str | None = None) -> Path:
    """The engine interpreter: ``--engine-python``, else ``$SIMKV_ENGINE_PYTHON``, else the repo's
    ``.venv-engine``."""
    raw = explicit or os.environ.get(ENGINE_PYTHON_ENV) or str(DEFAULT_ENGINE_PYTHON)
    path = Path(raw)
    if not path.exists():
        raise InputError("engine interpreter not found (run `make engine`, or give "
                         f"--engine-python / ${ENGINE_PYTHON_ENV})", source=path,
                         where="--engine-python")
    return path


#: Why: on a small CPU-only machine vLLM's engine-core process busy-waits on the worker's
#: results (0.55-0.65 of a core), so the API server's output loop starved now and then and
#: streamed first tokens in bursts.  Measured on the 2-core machine, 6 replays of 240 requests
#: of the generated trace at 8 in flight each way (docs/harness.md): client minus vLLM's mean
#: TTFT 8.2-119.5 ms as it was (3 of 6 replays over 30 ms), 6.4-9.1 ms with the engine core
#: at niceness 10, and vLLM's own mean TTFT 29.4-33.7 ms against 33.8-41.0 ms before.
ENGINE_CORE_NICE = 10


@dataclass(frozen=True)
class ServeOptions:
    """What ``simkv-harness serve`` starts."""

    model_config: str
    port: int = 8000
    host: str = "127.0.0.1"
    kv_cache_bytes: int = 8 * 1024 * 1024
    block_size: int | None = None
    max_model_len: int = 4096
    lmcache: bool = False
    lmcache_port: int = 5555
    lmcache_http_port: int = 8080
    lmcache_l1_gb: float = 1.0
    lmcache_chunk_tokens: int = 256
    lmcache_trigger_watermark: float = 0.8
    lmcache_eviction_ratio: float = 0.2
    engine_python: str | None = None
    dtype: str = "bfloat16"
    extra_args: tuple[str, ...] = ()
    startup_timeout_s: float = 300.0
    #: niceness given to vLLM's engine-core process once it is up (0: leave it)
    engine_core_nice: int = ENGINE_CORE_NICE


def renice_engine_core(api_pid: int, nice: int) -> list[int]:
    """Set ``nice`` on every thread of the API server's engine-core child process (Linux
    ``/proc``; threads it starts later inherit it); the thread ids changed."""
    done: list[int] = []
    if nice == 0:
        return done
    proc = Path("/proc")
    try:
        children = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return done
    for child in children:
        try:
            st = proc_stat(child.name)
            if st is None or int(st[1]) != api_pid or \
                    not (child / "comm").read_text().startswith("VLLM::EngineCor"):
                continue
            for task in (child / "task").iterdir():
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
                done.append(int(task.name))
        except (OSError, ValueError, IndexError):
            continue
    return done


@dataclass
class ManagedProcess:
    name: str
    proc: subprocess.Popen
    log_path: Path


def _get(url: str, timeout_s: float = 2.0) -> tuple[int, str]:
    req = urllib.request.Request(url)
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - local URL
        return resp.status, resp.read().decode("utf-8", "replace")


def _tail(path: Path, n_chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n_chars:]
    except OSError:
        return ""


@dataclass
class EngineStack:
    """The running servers of one configuration; use as a context manager."""

    options: ServeOptions
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="simkv-engine-")))
    processes: list[ManagedProcess] = field(default_factory=list)
    model_dir: Path | None = None
    #: the engine core's threads given ``options.engine_core_nice`` at start-up
    reniced_threads: list[int] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    @property
    def lmcache_metrics_url(self) -> str | None:
        if not self.options.lmcache:
            return None
        return f"http://127.0.0.1:{self.options.lmcache_http_port}/metrics"

    # ------------------------------------------------------------------ commands
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
                    "VLLM_SERVER_DEV_MODE": "1", "TMPDIR": str(self.run_dir),
                    "PYTHONUNBUFFERED": "1"})
        env.pop("PYTHONPATH", None)
        return env

    def lmcache_command(self, python: Path) -> list[str]:
        o = self.options
        exe = python.parent / "lmcache"
        head = [str(exe)] if exe.exists() else [str(python), "-m", "lmcache.cli.main"]
        return head + ["server", "--host", "127.0.0.1", "--port", str(o.lmcache_port),
                       "--l1-size-gb", f"{o.lmcache_l1_gb:g}", "--eviction-policy", "LRU",
                       "--chunk-size", str(o.lmcache_chunk_tokens),
                       "--eviction-trigger-watermark", f"{o.lmcache_trigger_watermark:g}",
                       "--eviction-ratio", f"{o.lmcache_eviction_ratio:g}",
                       "--supported-transfer-mode", "auto",
                       "--http-port", str(o.lmcache_http_port)]

    def vllm_command(self, python: Path, model_dir: Path) -> list[str]:
        o = self.options
        cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--host", o.host, "--port", str(o.port), "--served-model-name", SERVED_MODEL_NAME,
               "--max-model-len", str(o.max_model_len), "--dtype", o.dtype, "--enforce-eager",
               "--load-format", "dummy", "--kv-cache-memory-bytes", str(o.kv_cache_bytes),
               "--enable-prompt-tokens-details"]
        if o.block_size:
            cmd += ["--block-size", str(o.block_size)]
        if o.lmcache:
            cmd += ["--kv-transfer-config", json.dumps({
                "kv_connector": "LMCacheMPConnector", "kv_role": "kv_both",
                "kv_connector_extra_config": {"lmcache.mp.host": "tcp://127.0.0.1",
                                              "lmcache.mp.port": o.lmcache_port}})]
        return cmd + list(o.extra_args)

    # ------------------------------------------------------------------ life cycle
    @property
    def lmcache_log_path(self) -> Path | None:
        """The LMCache server's log (DEBUG: its lookups, stores, session ends and eviction-loop
        wakes with millisecond times; ``validate --lmcache-log`` reads them)."""
        return self.run_dir / "lmcache.log" if self.options.lmcache else None

    def _spawn(self, name: str, cmd: list[str], **env: str) -> ManagedProcess:
        log_path = self.run_dir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed when the process is reaped
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**self._env(), **env},
                                start_new_session=True, cwd=str(self.run_dir))
        log.close()
        mp = ManagedProcess(name, proc, log_path)
        self.processes.append(mp)
        return mp

    def _wait_http(self, mp: ManagedProcess, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if mp.proc.poll() is not None:
                raise EngineError(f"{mp.name} exited with status {mp.proc.returncode} during "
                                  f"start-up; last log lines:\n{_tail(mp.log_path)}")
            try:
                status, _ = _get(url)
                if status == 200:
                    return
            except (urllib.error.URLError, OSError, TimeoutError):
                pass
            time.sleep(0.5)
        raise EngineError(f"{mp.name} did not answer {url} within {timeout_s:.0f} s; last log "
                          f"lines:\n{_tail(mp.log_path)}")

    def start(self) -> EngineStack:
        python = find_engine_python(self.options.engine_python)
        cfg, user_dir = resolve_config(self.options.model_config)
        self.model_dir = user_dir or write_model_dir(cfg, self.run_dir / "model")
        try:
            if self.options.lmcache:
                # DEBUG: the server logs every loop wake and each request's lookup, store
                # and end (harness.lmcachelog); ~4 KB per request, 0.1 KB per wake
                lm = self._spawn("lmcache", self.lmcache_command(python),
                                 LMCACHE_LOG_LEVEL="DEBUG")
                self._wait_http(lm, self.lmcache_metrics_url, self.options.startup_timeout_s)
            vl = self._spawn("vllm", self.vllm_command(python, self.model_dir))
            self._wait_http(vl, f"{self.endpoint}/health", self.options.startup_timeout_s)
            self.reniced_threads = renice_engine_core(vl.proc.pid, self.options.engine_core_nice)
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self) -> bool:
        return bool(self.processes) and all(p.proc.poll() is None for p in self.processes)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM each process group (vLLM first), SIGKILL after ``timeout_s``; clean up."""
        for mp in reversed(self.processes):
            stop_process_group(mp.proc, timeout_s)
        self.processes.clear()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> EngineStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_process_group(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Stop a process started with ``start_new_session=True`` and all its children, by its id."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    # children may outlive the leader: the group id is the leader's pid
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
        pass
