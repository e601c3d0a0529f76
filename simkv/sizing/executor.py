"""Where independent tasks run: this process, a local process pool, or Ray tasks.

Two kinds of work go through here: the parts of a capacity x TTL grid (``map_shared``: the
stream is shipped once, to each pool worker by pickling, to Ray through the object store
with ``ray.put``, where numpy arrays are shared without copying) and per-shard tasks that
read their own dataset from a path (``map_tasks``: nothing big is shipped, so no node holds
the whole trace).  Results come back in the order of the items, so the answer does not
depend on the executor or on completion order.

``--address`` is checked before Ray sees it: a ``host:port`` (or ``ray://host:port``) that
does not accept a TCP connection within ``ADDRESS_TIMEOUT_S`` is bad input, not a hang.
Without an address a private local Ray is started (``address="local"``, so a cluster some
other program started on this machine is never joined by accident) and shut down after.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from simkv.errors import InputError

EXECUTORS = ("inline", "local", "ray")
ADDRESS_TIMEOUT_S = 3.0
#: resources of the private Ray started when no --address is given (kept small on purpose)
LOCAL_RAY_OBJECT_STORE_BYTES = 200 * 2**20


def check_executor(executor: str) -> str:
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r} (valid: {', '.join(EXECUTORS)})",
                         where="--executor")
    return executor


def check_ray_address(address: str | None, timeout_s: float = ADDRESS_TIMEOUT_S) -> str | None:
    """``address`` if a Ray head answers there (``auto``/None pass through), else InputError."""
    if address is None or address in ("auto", "local"):
        return address
    text = address.strip()
    hostport = text[len("ray://"):] if text.startswith("ray://") else text
    host, sep, port_text = hostport.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(f"not HOST:PORT (or ray://HOST:PORT, auto): {address[:100]!r}",
                         where="--address")
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot reach the Ray cluster at {address} ({reason})",
                         where="--address") from None
    return text


def map_shared(fn: Callable, items: list[tuple], *, shared: tuple, executor: str = "inline",
               address: str | None = None, workers: int | None = None) -> list:
    """``[fn(*shared, *item) for item in items]``: ``shared`` (a grid's stream) is shipped once
    per pool worker by pickling, or once to Ray's object store.  ``fn`` is module-level."""
    check_executor(executor)
    if executor == "ray":
        return map_ray(fn, items, shared=shared, address=address)
    if executor == "inline" or len(items) <= 1:
        return [fn(*shared, *item) for item in items]
    n = workers or min(len(items), os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *shared, *item) for item in items]
        return [f.result() for f in futures]


def map_tasks(fn: Callable, items: list[tuple], *, executor: str = "local",
              address: str | None = None, workers: int | None = None) -> list:
    """``[fn(*item) for item in items]`` here, in a spawned process pool, or as Ray tasks.

    ``fn`` must be a module-level function (it is pickled by reference) whose arguments are
    small: each task reads its own data (a shard's dataset) where it runs.
    """
    check_executor(executor)
    if executor == "ray":
        return map_ray(fn, items, shared=(), address=address)
    if executor == "inline" or len(items) <= 1:
        return [fn(*item) for item in items]
    n = workers or min(len(items), os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *item) for item in items]
        return [f.result() for f in futures]


def map_ray(fn, items: list[tuple], *, shared: tuple, address: str | None = None) -> list:
    """``[fn(*shared, *item) for item in items]`` as Ray tasks; ``shared`` goes through the
    object store once.  Joins ``address`` (checked first) or starts a private local Ray,
    unless Ray is already initialised, and shuts down only what it started."""
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError("the ray executor needs Ray: pip install 'simkv[ray]'",
                         where="--executor") from None
    started = False
    if not ray.is_initialized():
        address = check_ray_address(address)
        kwargs = dict(log_to_driver=False)
        if address is None:
            kwargs.update(address="local", include_dashboard=False,
                          object_store_memory=LOCAL_RAY_OBJECT_STORE_BYTES)
        else:
            kwargs.update(address=address)
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise InputError(f"cannot join the Ray cluster: {exc}", where="--address") from None
        started = True
    try:
        refs = [ray.put(x) for x in shared]
        task = ray.remote(fn)
        return ray.get([task.remote(*refs, *item) for item in items])
    finally:
        if started:
            ray.shutdown()
