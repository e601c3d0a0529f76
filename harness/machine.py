"""How busy the machine was around a replay: load average before, CPU shares during.

Latency measured on a shared machine is not the engine's alone.  Each replay records the
1-minute load average just before it starts (engine idle) and, during it, the whole machine's
busy cores and the engine's own (every process in the vLLM server's session: the API server
and its engine core), from ``/proc`` (Linux; elsewhere the fields are ``None``).  A replay is
*quiet* when the load before it was at most ``QUIET_LOAD_PER_CPU`` per CPU and the cores busy
outside the engine and this client stayed under ``QUIET_OTHER_CORES``; calibrations from
replays that were not quiet say so and do not replace a quiet one unless asked.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

QUIET_LOAD_PER_CPU = 0.5
QUIET_OTHER_CORES = 0.5
_PROC = Path("/proc")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class MachineLoad:
    """Load around one replay (``None`` where ``/proc`` is not readable)."""

    cpus: int
    load_1m_before: float | None
    wall_s: float
    machine_busy_cores: float | None
    engine_busy_cores: float | None
    client_busy_cores: float | None
    engine_pids: int

    @property
    def other_busy_cores(self) -> float | None:
        if None in (self.machine_busy_cores, self.engine_busy_cores, self.client_busy_cores):
            return None
        return max(0.0, self.machine_busy_cores - self.engine_busy_cores - self.client_busy_cores)

    @property
    def engine_cpu_share(self) -> float | None:
        """The engine's share of all the machine's CPU time during the replay."""
        if self.engine_busy_cores is None:
            return None
        return self.engine_busy_cores / self.cpus

    @property
    def quiet(self) -> bool:
        if self.load_1m_before is None or self.load_1m_before > QUIET_LOAD_PER_CPU * self.cpus:
            return False
        other = self.other_busy_cores
        return other is not None and other <= QUIET_OTHER_CORES

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(other_busy_cores=self.other_busy_cores, engine_cpu_share=self.engine_cpu_share,
                   quiet=self.quiet)
        return out


def _machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot."""
    try:
        fields = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    vals = [float(v) for v in fields[:8]]
    idle = vals[3] + vals[4]
    return (sum(vals) - idle) / _TICKS_PER_S, sum(vals) / _TICKS_PER_S


def proc_stat(pid: str) -> list[str] | None:
    """``/proc/PID/stat`` fields from the state on (ppid is [1], session id [3]); None if gone."""
    try:
        raw = (_PROC / pid / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()  # fields from 'state' on


def _cpu_of(pid: str) -> float:
    st = proc_stat(pid)
    return 0.0 if st is None else (float(st[11]) + float(st[12])) / _TICKS_PER_S


def engine_session_pids(port: int) -> list[str]:
    """Every process in the session of the vLLM server listening on ``port`` (by cmdline)."""
    sid = None
    try:
        pids = [p.name for p in _PROC.iterdir() if p.name.isdigit()]
    except OSError:
        return []
    for pid in pids:
        try:
            cmd = (_PROC / pid / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"vllm.entrypoints.openai.api_server" in cmd and b"--port" in cmd:
            i = cmd.index(b"--port")
            if i + 1 < len(cmd) and cmd[i + 1] == str(port).encode():
                st = proc_stat(pid)
                sid = st[3] if st else None
                break
    if sid is None:
        return []
    return [p for p in pids if (st := proc_stat(p)) is not None and st[3] == sid]


class LoadMeter:
    """``with LoadMeter(ports) as m: replay()`` then ``m.result``."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.result: MachineLoad | None = None

    def __enter__(self) -> LoadMeter:
        self._load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        self._pids = [p for port in self.ports for p in engine_session_pids(port)]
        self._eng0 = sum(_cpu_of(p) for p in self._pids)
        self._mach0 = _machine_cpu()
        self._self0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        wall = max(time.perf_counter() - self._t0, 1e-9)
        mach1 = _machine_cpu()
        busy = None if (mach1 is None or self._mach0 is None) else (mach1[0] - self._mach0[0]) / wall
        eng = (sum(_cpu_of(p) for p in self._pids) - self._eng0) / wall if self._pids else None
        self.result = MachineLoad(cpus=os.cpu_count() or 1, load_1m_before=self._load, wall_s=wall,
                                  machine_busy_cores=busy, engine_busy_cores=eng,
                                  client_busy_cores=(time.process_time() - self._self0) / wall,
                                  engine_pids=len(self._pids))
