"""Workload specs in YAML: pydantic models at the boundary, frozen dataclasses inside.

``load_spec(path)`` reads a YAML file, validates it (unknown keys, negative rates,
probabilities outside [0, 1], Zipf exponents <= 0, an empty model mix, unknown model names...)
and returns a :class:`simkv.workloads.model.WorkloadSpec`.  Any problem raises one
:class:`InputError` naming the file and the field path, e.g.
``workloads/x.yaml: field arrivals.rate_per_day: must be > 0``.

Durations accept a number of seconds or a string with a unit (``90``, ``5m``, ``3d``).
The format is described in docs/workloads.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from simkv.errors import InputError
from simkv.units import parse_duration
from simkv.validate import MAX_COUNT, UserModel
from simkv.workloads import model as m
from simkv.workloads.distributions import DISTRIBUTIONS, PARAM_NAMES
from simkv.yamlio import read_yaml, validation_error

DAY_S = 86400.0


def _duration(v: Any) -> Any:
    """Seconds from a number or a unit string; 0 is allowed (validated by the field)."""
    if isinstance(v, bool):
        raise ValueError(f"not a duration: {v!r}")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str) and v.strip() in ("0", "0s"):
        return 0.0
    try:
        seconds = parse_duration(v)
    except InputError as exc:
        raise ValueError(exc.detail) from None
    if seconds is None:
        raise ValueError("must be a finite duration")
    return seconds


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0, allow_inf_nan=False)]
PositiveDuration = Annotated[float, BeforeValidator(_duration), Field(gt=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1)]
ZipfExponent = Annotated[float, Field(gt=0, allow_inf_nan=False)]


#: the registered distribution names (a YAML ``dist:`` outside them is a field error)
DistName = Literal[tuple(DISTRIBUTIONS.names())]  # type: ignore[valid-type]


class _Strict(UserModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DistModel(_Strict):
    """One distribution: ``{dist: lognormal, median: 200, sigma: 0.8, min: 1}`` (a bare number
    means ``constant``)."""

    dist: DistName
    value: float | None = Field(None, ge=0, allow_inf_nan=False)
    low: float | None = Field(None, ge=0, allow_inf_nan=False)
    high: float | None = Field(None, ge=0, allow_inf_nan=False)
    mean: float | None = Field(None, ge=0, allow_inf_nan=False)
    std: float | None = Field(None, ge=0, allow_inf_nan=False)
    median: float | None = Field(None, gt=0, allow_inf_nan=False)
    sigma: float | None = Field(None, ge=0, allow_inf_nan=False)
    values: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    weights: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    min: float | None = Field(None, ge=0, allow_inf_nan=False)
    max: float | None = Field(None, ge=0, allow_inf_nan=False)
    multiple_of: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _params(self) -> DistModel:
        kind = DISTRIBUTIONS.get(self.dist)
        allowed = set(kind.params) | set(kind.optional)
        for name in PARAM_NAMES:
            given = getattr(self, name) is not None
            if name in kind.params and not given:
                raise ValueError(f"{self.dist} needs '{name}'")
            if given and name not in allowed:
                raise ValueError(f"'{name}' does not apply to {self.dist} (it takes "
                                 f"{', '.join(sorted(allowed))})")
        problem = kind.check(self)
        if problem:
            raise ValueError(problem)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must be <= max")
        return self

    def build(self) -> m.Dist:
        return m.Dist(kind=self.dist, value=self.value, low=self.low, high=self.high,
                      mean=self.mean, std=self.std, median=self.median, sigma=self.sigma,
                      values=tuple(self.values or ()), weights=tuple(self.weights or ()),
                      min=self.min, max=self.max, multiple_of=self.multiple_of)


def _bare_number(v: Any) -> Any:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return {"dist": "constant", "value": v}
    return v


DistField = Annotated[DistModel, BeforeValidator(_bare_number)]


class BurstModel(_Strict):
    at: Duration
    duration: PositiveDuration
    multiplier: float = Field(ge=0, allow_inf_nan=False)
    repeat_every: PositiveDuration | None = None


class ArrivalsModel(_Strict):
    rate_per_day: float = Field(gt=0, allow_inf_nan=False)
    diurnal: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    bursts: list[BurstModel] = []

    @field_validator("diurnal")
    @classmethod
    def _diurnal(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if len(v) != 24:
                raise ValueError(f"needs 24 hourly weights, got {len(v)}")
            if sum(v) <= 0:
                raise ValueError("weights must not all be 0")
        return v


class SessionsModel(_Strict):
    turns: DistField = DistModel(dist="constant", value=1)
    think_time_s: DistField = DistModel(dist="exponential", mean=30)


class TemplatesModel(_Strict):
    templates: int = Field(1, ge=1, le=MAX_COUNT)
    zipf: ZipfExponent = 1.0
    tokens: DistField
    probability: Probability = 1.0
    change_every: PositiveDuration | None = None
    change_at: list[Duration] = []


class DocumentsModel(_Strict):
    corpus: int = Field(ge=1, le=MAX_COUNT)
    zipf: ZipfExponent = 1.0
    tokens: DistField
    per_request: DistField = DistModel(dist="constant", value=1)
    probability: Probability = 1.0


class MessageModel(_Strict):
    tokens: DistField


class HistoryModel(_Strict):
    mode: Literal["full", "window", "none"] = "full"
    window_turns: int | None = Field(None, ge=1)
    include_documents: bool = True

    @model_validator(mode="after")
    def _window(self) -> HistoryModel:
        if self.mode == "window" and self.window_turns is None:
            raise ValueError("mode 'window' needs window_turns")
        if self.mode != "window" and self.window_turns is not None:
            raise ValueError("window_turns applies only to mode 'window'")
        return self


class ModelWeightModel(_Strict):
    name: str
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from simkv.models import catalogue_names

        names = catalogue_names()
        if v not in names:
            raise ValueError(f"unknown model {v!r} (catalogue: {', '.join(names)})")
        return v


class TenantsModel(_Strict):
    count: int = Field(1, ge=1, le=MAX_COUNT)
    zipf: ZipfExponent | None = None
    isolated: bool = False
    shared_content: bool = True


class WorkloadModel(_Strict):
    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    duration: PositiveDuration = DAY_S
    seed: int = Field(0, ge=0, lt=2**63)
    block_tokens: int = Field(256, gt=0, le=2**20)
    arrivals: ArrivalsModel
    sessions: SessionsModel = SessionsModel()
    system: TemplatesModel | None = None
    tools: TemplatesModel | None = None
    documents: DocumentsModel | None = None
    user: MessageModel
    output: MessageModel
    history: HistoryModel = HistoryModel()
    models: list[ModelWeightModel] = Field(min_length=1)
    tenants: TenantsModel = TenantsModel()
    resets: list[Duration] = []


# --------------------------------------------------------------------------- conversion
def _templates(t: TemplatesModel | None) -> m.Templates | None:
    if t is None:
        return None
    return m.Templates(count=t.templates, zipf=t.zipf, tokens=t.tokens.build(),
                       probability=t.probability, change_every_s=t.change_every,
                       change_at_s=tuple(sorted(t.change_at)))


def _convert(w: WorkloadModel, name: str, source: str, digest: str) -> m.WorkloadSpec:
    d = w.documents
    return m.WorkloadSpec(
        name=name, description=w.description.strip(), duration_s=w.duration, seed=w.seed,
        block_tokens=w.block_tokens,
        arrivals=m.Arrivals(
            rate_per_day=w.arrivals.rate_per_day,
            diurnal=None if w.arrivals.diurnal is None else tuple(w.arrivals.diurnal),
            bursts=tuple(m.Burst(b.at, b.duration, b.multiplier, b.repeat_every)
                         for b in w.arrivals.bursts)),
        turns=w.sessions.turns.build(), think_time_s=w.sessions.think_time_s.build(),
        system=_templates(w.system), tools=_templates(w.tools),
        documents=None if d is None else m.Documents(
            corpus=d.corpus, zipf=d.zipf, tokens=d.tokens.build(),
            per_request=d.per_request.build(), probability=d.probability),
        user_tokens=w.user.tokens.build(), output_tokens=w.output.tokens.build(),
        history=m.History(w.history.mode, w.history.window_turns, w.history.include_documents),
        models=tuple(x.name for x in w.models), model_weights=tuple(x.weight for x in w.models),
        tenants=m.Tenants(w.tenants.count, w.tenants.zipf, w.tenants.isolated,
                          w.tenants.shared_content),
        resets_s=tuple(sorted(w.resets)), digest=digest, source=source,
    )


def spec_from_dict(data: Any, *, source: str = "<spec>", default_name: str = "workload"
                   ) -> m.WorkloadSpec:
    """Validate a parsed YAML document and convert it to a frozen WorkloadSpec."""
    if not isinstance(data, dict):
        raise InputError("a workload spec must be a YAML mapping", source=source)
    try:
        w = WorkloadModel.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source) from None
    canonical = json.dumps(w.model_dump(mode="json"), sort_keys=True, allow_nan=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return _convert(w, w.name or default_name, source, digest)


def load_spec(path: str | Path) -> m.WorkloadSpec:
    """Read and validate a workload YAML file."""
    path = Path(path)
    data = read_yaml(path, "workload spec")
    return spec_from_dict(data, source=str(path), default_name=path.stem)


def with_overrides(spec: m.WorkloadSpec, *, seed: int | None = None,
                   duration_s: float | None = None, block_tokens: int | None = None
                   ) -> m.WorkloadSpec:
    """The spec with CLI overrides applied (validated like the YAML fields)."""
    from dataclasses import replace

    if seed is not None and not 0 <= seed < 2**63:
        raise InputError("must be in [0, 2^63)", where="--seed")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise InputError("the window must be > 0", where="--days/--hours/--duration")
    if block_tokens is not None and block_tokens <= 0:
        raise InputError("must be > 0", where="--block-tokens")
    return replace(spec,
                   seed=spec.seed if seed is None else int(seed),
                   duration_s=spec.duration_s if duration_s is None else float(duration_s),
                   block_tokens=spec.block_tokens if block_tokens is None else int(block_tokens))
