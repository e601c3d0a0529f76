"""Where a grid's independent parts run: this process, a local process pool, or Ray tasks.

The stream is shipped once: to each pool worker by pickling, to Ray through the object store
(``ray.put``), where numpy arrays are shared without copying.  Results are merged by the part
they belong to, so the answer does not depend on the executor or on completion order.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from simkv.errors import InputError
from simkv.sizing.stream import SizingStream

EXECUTORS = ("inline", "local", "ray")


def _run(stream: SizingStream, caps: np.ndarray, ttls: np.ndarray, part):
    from simkv.sizing.grid import run_part

    return run_part(stream, caps, ttls, part)


def run_parts(stream: SizingStream, caps: np.ndarray, ttls: np.ndarray, parts: list, *,
              executor: str = "inline", address: str | None = None,
              workers: int | None = None) -> list:
    """Results of ``run_part`` for each part, in the order of ``parts``."""
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r} (valid: {', '.join(EXECUTORS)})",
                         where="--executor")
    if executor == "ray":
        return map_ray(_run, [(p,) for p in parts], shared=(stream, caps, ttls), address=address)
    if executor == "inline" or len(parts) <= 1:
        return [_run(stream, caps, ttls, p) for p in parts]
    n = workers or min(len(parts), os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run, stream, caps, ttls, p) for p in parts]
        return [f.result() for f in futures]


def map_ray(fn, items: list[tuple], *, shared: tuple, address: str | None = None) -> list:
    """``[fn(*shared, *item) for item in items]`` as Ray tasks; ``shared`` goes through the
    object store once.  Connects to ``address`` (or starts a local instance) unless Ray is
    already initialised, and shuts down only what it started."""
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError("the ray executor needs Ray: pip install 'simkv[ray]'",
                         where="--executor") from None
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise InputError(f"cannot reach the Ray cluster: {exc}", where="--address") from None
        started = True
    try:
        refs = [ray.put(x) for x in shared]
        task = ray.remote(fn)
        return ray.get([task.remote(*refs, *item) for item in items])
    finally:
        if started:
            ray.shutdown()
