"""Where the workloads stage gets its traces: the example workloads (generated from their YAML specs over short
windows, so the whole report runs in minutes) or a user's own trace.

The windows are stated in the report: a workload generated over 2 hours is extrapolated to a
month by the bills, and the caption of every figure says which data it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from simkv.atomicio import sha256_file
from simkv.errors import InputError
from simkv.pipeline.workload import WorkloadInput


@dataclass(frozen=True)
class WindowPlan:
    """How much of a spec to generate: a window and an optional arrival-rate scale."""

    window_s: float
    rate_scale: float = 1.0

    def describe(self) -> str:
        from simkv.report import fmt

        text = f"first {fmt.duration(self.window_s)}"
        if self.rate_scale != 1.0:
            text += f" at {self.rate_scale:g}x its arrival rate"
        return text


HOUR_S, DAY_S = 3600.0, 86400.0
#: default windows (quick / full); prompt-evolution needs days to include its template changes
#: (days 3, 5, 6, 9) and its reset (day 10), so it is thinned instead.
WINDOWS_QUICK: dict[str, WindowPlan] = {"*": WindowPlan(1 * HOUR_S),
                                        "prompt-evolution": WindowPlan(11 * DAY_S, 0.02)}
WINDOWS_FULL: dict[str, WindowPlan] = {"*": WindowPlan(4 * HOUR_S),
                                       "prompt-evolution": WindowPlan(11 * DAY_S, 0.05)}


def plan_for(name: str, quick: bool) -> WindowPlan:
    table = WINDOWS_QUICK if quick else WINDOWS_FULL
    return table.get(name, table["*"])


def _scaled(spec, scale: float):
    if scale == 1.0:
        return spec
    return replace(spec, arrivals=replace(spec.arrivals, rate_per_day=spec.arrivals.rate_per_day * scale))


def example_workloads(directory: Path, *, quick: bool) -> list[WorkloadInput]:
    """Every ``*.yaml`` spec in ``directory``, generated over its report window."""
    from simkv.workloads import generate, load_spec

    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("not a directory of workload specs", source=directory,
                         where="--workloads-dir")
    out = []
    for path in sorted(directory.glob("*.yaml")):
        spec = load_spec(path)
        plan = plan_for(spec.name, quick)
        window = min(plan.window_s, spec.duration_s)
        trace = generate(_scaled(spec, plan.rate_scale), window)
        model = trace.models[0] if len(trace.models) == 1 else "+".join(trace.models)
        out.append(WorkloadInput(
            name=spec.name, trace=trace, model=model,
            source=f"{directory.name}/{path.name}, {WindowPlan(window, plan.rate_scale).describe()}",
            description=spec.description, spec=spec, sha256=sha256_file(path)))
    if not out:
        raise InputError("no *.yaml workload specs found", source=directory, where="--workloads-dir")
    return out


def user_trace(path: Path, model: str | None, fmt: str | None = None) -> WorkloadInput:
    """A user's trace file as a report input, as a stream (``--model`` attaches a model to a
    trace without one: ``attach_model``, applied to each chunk as the workloads stage copies
    the trace into the run folder, which also checks that every request has a model)."""
    from simkv.models import get_model
    from simkv.trace.stream import TraceSource

    stream = TraceSource.of(path, fmt)
    if model is not None:
        get_model(model)
    head = next(stream.chunks(1), None)
    if head is None:
        raise InputError("the trace has no requests", source=path)
    models = (model,) if model is not None else head.models
    if not models or (model is None and not head.has_models):
        raise InputError("the trace names no model: give --model NAME", where="--model")
    if model is not None and len(set(head.models)) > 1:
        raise InputError("this trace names several models; each request's own model is used, "
                         "so --model is refused", where="--model")
    name = Path(path).stem
    shown = models[0] if len(models) == 1 else "+".join(models)
    return WorkloadInput(name=name, stream=stream, model=shown, source=Path(path).name,
                         description="", spec=None, sha256=sha256_file(path),
                         attach_model=model)
