"""Calibration: fit the linear TTFT model to measured records, save/load it as YAML, and score
predictions against measurements.

Measured records (from the harness; Parquet, CSV or JSONL) carry ``request`` (index into the
trace), ``ttft_s`` (null on error), ``prompt_tokens``, ``cached_tokens`` (the engine's
``usage.prompt_tokens_details.cached_tokens``; may be null), ``output_tokens`` and ``error``
(null when ok).  The fit uses requests served one at a time, so TTFT is prefill alone:

    TTFT = a + b*u + c*u*ctx + d*cached,   u = prompt - cached,  ctx = cached + (u + 1) / 2

with non-negative coefficients, fitted in absolute terms: a Huber loss on seconds (iteratively
reweighted exact non-negative least squares over the 2^4 active sets; threshold 1.345 x the
residuals' robust scale), so a few slow outliers cannot drag the fit and short prompts do not
outweigh long ones.  (An earlier fit minimised relative error weighted 1/y; it leaned low,
predicting p50 0.027 s against 0.054 s measured on its own records.)  The error is reported
twice: in-sample (the records fitted) and held out (``holdout``, drawn with the run's seed) as
MAPE and p50 / p90 of the absolute relative error.  Records with inter-token times also give the
measured decode step (their median), which the serving simulation uses for decode.

The client's trip (its TTFT minus the engine's own, vLLM's TTFT histogram mean, per replay) is
kept per number of requests in flight (``client_trip_s``): at one in flight it is part of the
intercept; with more in flight the API server and the client share the machine with a busy
engine and the trip grows (on the 2-core development machine, engine core reniced, 7 runs of
the fresh-replay benchmark: 2.7-3.8 ms one at a time, 6.3-9.9 ms at 8 in flight, alike for
both trace families).  A prediction at ``c`` in flight pays the trip at that level once per
request (:meth:`Calibration.extra_trip_s` is its growth from one in flight), measured on
calibration replays made at those levels.

A calibration remembers the machine load of the replays it came from (``quiet``, from the
harness's ``machine`` block): ``simkv.latency.calibration_guard.check_overwrite`` refuses to replace a calibration fitted on
a quiet machine with one from a loaded machine unless asked.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator

from simkv.errors import InputError
from simkv.latency.costs import LinearCoefficients, design_matrix
from simkv.validate import UserModel, input_file
from simkv.yamlio import read_yaml, validation_error

MEASURED_COLUMNS = ("request", "ttft_s", "prompt_tokens", "cached_tokens", "output_tokens", "error")
COEFFICIENT_NAMES = ("intercept_s", "per_uncached_token_s", "per_uncached_context_token_s",
                     "per_cached_token_s")
MIN_RECORDS = len(COEFFICIENT_NAMES)


# ------------------------------------------------------------------ YAML schema (the boundary)
class _FitModel(UserModel):
    model_config = ConfigDict(extra="forbid")
    records_fit: int = Field(ge=0)
    records_evaluated: int = Field(ge=0)
    evaluated_on: Literal["holdout", "training"]
    outliers_downweighted: int = Field(ge=0)
    mape: float = Field(ge=0)
    p50_abs_rel_error: float = Field(ge=0)
    p90_abs_rel_error: float = Field(ge=0)
    in_sample_mape: float = Field(ge=0)
    in_sample_p50_abs_rel_error: float = Field(ge=0)
    in_sample_p90_abs_rel_error: float = Field(ge=0)
    holdout: float = Field(ge=0, lt=1)
    seed: int
    measured: str = ""
    loss: Literal["huber_seconds"] = "huber_seconds"
    quiet: bool | None = None


class _CalibrationModel(UserModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["linear_ttft"] = "linear_ttft"
    intercept_s: float = Field(ge=0, allow_inf_nan=False)
    per_uncached_token_s: float = Field(ge=0, allow_inf_nan=False)
    per_uncached_context_token_s: float = Field(ge=0, allow_inf_nan=False)
    per_cached_token_s: float = Field(ge=0, allow_inf_nan=False)
    decode_step_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    client_trip_s: dict[int, float] | None = None
    fit: _FitModel | None = None

    @field_validator("client_trip_s")
    @classmethod
    def _levels(cls, v: dict[int, float] | None) -> dict[int, float] | None:
        if v is not None:
            if any(k < 1 for k in v):
                raise ValueError("keys are requests in flight, at least 1")
            if not all(np.isfinite(x) for x in v.values()):
                raise ValueError("trips must be finite seconds")
        return v


@dataclass(frozen=True)
class FitReport:
    """How well the fit predicts TTFT on records it did not see (or on its own, if none held)."""

    records_fit: int
    records_evaluated: int
    evaluated_on: str
    outliers_downweighted: int
    mape: float
    p50_abs_rel_error: float
    p90_abs_rel_error: float
    in_sample_mape: float
    in_sample_p50_abs_rel_error: float
    in_sample_p90_abs_rel_error: float
    holdout: float
    seed: int
    measured: str = ""
    loss: str = "huber_seconds"
    quiet: bool | None = None  # None: the records do not say how busy the machine was


@dataclass(frozen=True)
class Calibration:
    """Fitted coefficients (seconds, per token, per token^2, per cached token) and their fit."""

    intercept_s: float
    per_uncached_token_s: float
    per_uncached_context_token_s: float
    per_cached_token_s: float
    fit: FitReport | None = None
    decode_step_s: float | None = None
    #: the client's mean trip (client TTFT minus the engine's) per requests in flight, sorted
    client_trip_s: tuple[tuple[int, float], ...] = ()

    def extra_trip_s(self, in_flight: int | None) -> float:
        """The trip's growth from one request in flight to ``in_flight`` (seconds): linear
        between measured levels, the last level's beyond them; 0 when not measured at one in
        flight and at least one level above (nothing to tell the growth from)."""
        levels = dict(self.client_trip_s)
        if in_flight is None or in_flight <= 1 or 1 not in levels or len(levels) < 2:
            return 0.0
        xs = np.asarray(sorted(levels), dtype=np.float64)
        ys = np.asarray([levels[int(k)] for k in xs])
        return float(np.interp(float(in_flight), xs, ys) - levels[1])

    @property
    def one_in_flight_trip_s(self) -> float:
        """The client's trip inside the intercept (measured one at a time; 0 when not)."""
        return dict(self.client_trip_s).get(1, 0.0)

    def with_trips(self, trips: dict[int, float]) -> Calibration:
        """This calibration with the client's trip measured at these levels of in flight."""
        return replace(self, client_trip_s=tuple(sorted((int(k), float(v)) for k, v in trips.items())))

    def coefficients(self) -> LinearCoefficients:
        return LinearCoefficients(self.intercept_s, self.per_uncached_token_s,
                                  self.per_uncached_context_token_s, self.per_cached_token_s)

    def to_yaml(self) -> str:
        data: dict[str, Any] = {"kind": "linear_ttft"}
        data.update({k: float(getattr(self, k)) for k in COEFFICIENT_NAMES})
        if self.decode_step_s is not None:
            data["decode_step_s"] = float(self.decode_step_s)
        if self.client_trip_s:
            data["client_trip_s"] = {int(k): float(v) for k, v in self.client_trip_s}
        if self.fit is not None:
            data["fit"] = asdict(self.fit)
        return yaml.safe_dump(data, sort_keys=False)


def parse_calibration(data: Any, *, source: str | Path) -> Calibration:
    """Validate a calibration mapping; errors name the file and the field path."""
    try:
        m = _CalibrationModel.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source) from None
    fit = FitReport(**m.fit.model_dump()) if m.fit is not None else None
    trips = tuple(sorted((m.client_trip_s or {}).items()))
    return Calibration(m.intercept_s, m.per_uncached_token_s, m.per_uncached_context_token_s,
                       m.per_cached_token_s, fit, m.decode_step_s, trips)


def load_calibration(path: Path) -> Calibration:
    """Read and validate a calibration YAML written by ``simkv calibrate``."""
    data = read_yaml(path, "calibration")
    if not isinstance(data, dict):
        raise InputError("a calibration is a mapping of coefficient names to numbers", source=path)
    return parse_calibration(data, source=path)


# ------------------------------------------------------------------ measured records
def load_measured(path: Path) -> pd.DataFrame:
    """Measured records from Parquet, CSV or JSONL, with the columns checked."""
    path = input_file(path, "measured records file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".csv":
            df = pd.read_csv(path)
        elif suffix in (".jsonl", ".json", ".ndjson"):
            df = pd.read_json(path, lines=suffix != ".json")
        else:
            raise InputError(f"unknown suffix {suffix!r} (use .parquet, .csv or .jsonl)", source=path)
    except InputError:
        raise
    # what the readers raise on hostile bytes, by name: pyarrow's errors, pandas' parser
    # errors and UnicodeDecodeError (ValueErrors), RecursionError on deep JSON, OSError
    except (pa.ArrowException, ValueError, OSError, RecursionError) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise InputError(f"cannot read measured records: {type(exc).__name__}: {first}",
                         source=path) from None
    return check_measured(df, source=path)


def check_measured(df: pd.DataFrame, *, source: str | Path = "measured records") -> pd.DataFrame:
    missing = [c for c in MEASURED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} (need {', '.join(MEASURED_COLUMNS)})",
                         source=source)
    for col in ("request", "ttft_s", "prompt_tokens", "cached_tokens", "output_tokens"):
        if not pd.api.types.is_numeric_dtype(df[col]) and df[col].notna().any():
            try:
                df = df.assign(**{col: pd.to_numeric(df[col])})
            except (TypeError, ValueError):
                raise InputError("must hold numbers (or nulls)", source=source,
                                 where=f"column {col}") from None
    return df


def usable_mask(df: pd.DataFrame, *, need_cached: bool) -> np.ndarray:
    err = df["error"]
    ok = err.isna() | (err.astype(str).str.len() == 0)
    ttft = pd.to_numeric(df["ttft_s"], errors="coerce")
    prompt = pd.to_numeric(df["prompt_tokens"], errors="coerce")
    keep = ok & np.isfinite(ttft) & (ttft > 0) & (prompt > 0)
    if need_cached:
        cached = pd.to_numeric(df["cached_tokens"], errors="coerce")
        keep &= cached.notna() & (cached >= 0)
    return keep.to_numpy(dtype=bool)


def usable_records(df: pd.DataFrame) -> pd.DataFrame:
    """Rows a fit can use: no error, a positive finite TTFT, known prompt and cached tokens."""
    return df.loc[usable_mask(df, need_cached=True)].reset_index(drop=True)


def split_tokens(prompt, cached) -> tuple[np.ndarray, np.ndarray]:
    """(uncached, cached) with at least one computed token, as the latency model counts them."""
    prompt = np.asarray(prompt, dtype=np.float64)
    cached = np.minimum(np.asarray(cached, dtype=np.float64), prompt)
    uncached = np.maximum(prompt - cached, 1.0)
    return uncached, prompt - uncached


# ------------------------------------------------------------------ fitting
def nnls_small(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact non-negative least squares for a few columns: best of all active sets."""
    k = a.shape[1]
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    an = a / scale
    best, best_rss = np.zeros(k), float(b @ b)
    for r in range(1, k + 1):
        for cols in itertools.combinations(range(k), r):
            sub = an[:, cols]
            x, *_ = np.linalg.lstsq(sub, b, rcond=None)
            if np.any(x < 0):
                continue
            rss = float(np.sum((sub @ x - b) ** 2))
            if rss < best_rss - 1e-15 * max(best_rss, 1.0):
                best_rss = rss
                best = np.zeros(k)
                best[list(cols)] = x
    return best / scale


def predict_ttft(coef: LinearCoefficients, uncached, cached) -> np.ndarray:
    """Standalone TTFT of the linear model."""
    return design_matrix(uncached, cached) @ coef.as_array()


def relative_errors(predicted, measured) -> np.ndarray:
    predicted = np.asarray(predicted, dtype=np.float64)
    measured = np.asarray(measured, dtype=np.float64)
    return np.abs(predicted - measured) / measured


#: Huber's threshold in robust standard deviations (95% efficiency under normal noise)
HUBER_K = 1.345


def huber_nnls(x: np.ndarray, y: np.ndarray, *, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative coefficients minimising the Huber loss of ``x @ c - y`` (seconds), by
    iteratively reweighted least squares; returns (coefficients, final weights)."""
    coef = nnls_small(x, y)
    w = np.ones_like(y)
    for _ in range(iterations):
        r = x @ coef - y
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        if scale <= 1e-12 * max(float(np.abs(y).max()), 1e-300):
            return coef, w  # an exact fit: nothing to down-weight
        delta = HUBER_K * scale
        w = np.where(np.abs(r) <= delta, 1.0, delta / np.maximum(np.abs(r), 1e-300))
        sw = np.sqrt(w)
        new = nnls_small(x * sw[:, None], y * sw)
        if np.allclose(new, coef, rtol=1e-10, atol=1e-15):
            return new, w
        coef = new
    return coef, w


def _errors(pred: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    rel = relative_errors(pred, y)
    return float(rel.mean()), float(np.percentile(rel, 50)), float(np.percentile(rel, 90))


def measured_decode_step_s(df: pd.DataFrame) -> float | None:
    """Median of the records' mean inter-token times (``itl_s``), when they carry them."""
    if "itl_s" not in df.columns:
        return None
    itl = pd.to_numeric(df["itl_s"], errors="coerce").to_numpy(dtype=np.float64)
    itl = itl[np.isfinite(itl) & (itl > 0)]
    return float(np.median(itl)) if len(itl) else None


def fit_calibration(measured: pd.DataFrame, *, holdout: float = 0.25, seed: int = 0,
                    source: str = "", quiet: bool | None = None) -> Calibration:
    """Fit the coefficients on part of the usable records and score them in and out of sample.

    ``quiet``: whether the replay behind the records ran on a quiet machine (the harness's
    ``summary.json`` says; ``None`` when unknown)."""
    if not 0.0 <= holdout < 1.0:
        raise InputError("must be within [0, 1)", where="--holdout")
    rows = usable_records(check_measured(measured, source=source or "measured records"))
    if len(rows) < MIN_RECORDS:
        raise InputError(f"only {len(rows)} usable record(s) (no error, a TTFT and cached_tokens); "
                         f"a fit needs at least {MIN_RECORDS}", source=source or None)
    u, p = split_tokens(rows["prompt_tokens"], rows["cached_tokens"])
    y = rows["ttft_s"].to_numpy(dtype=np.float64)
    x = design_matrix(u, p)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    order = rng.permutation(len(rows))
    n_hold = int(round(holdout * len(rows)))
    if n_hold and len(rows) - n_hold >= MIN_RECORDS:
        test, train, evaluated_on = order[:n_hold], order[n_hold:], "holdout"
    else:
        test = train = order
        evaluated_on = "training"
    coef, weights = huber_nnls(x[train], y[train])
    mape, p50, p90 = _errors(x[test] @ coef, y[test])
    in_mape, in_p50, in_p90 = _errors(x[train] @ coef, y[train])
    report = FitReport(records_fit=int(len(train)), records_evaluated=int(len(test)),
                       evaluated_on=evaluated_on, outliers_downweighted=int((weights < 0.5).sum()),
                       mape=mape, p50_abs_rel_error=p50, p90_abs_rel_error=p90,
                       in_sample_mape=in_mape, in_sample_p50_abs_rel_error=in_p50,
                       in_sample_p90_abs_rel_error=in_p90, holdout=float(holdout),
                       seed=int(seed), measured=str(source), quiet=quiet)
    return Calibration(*(float(v) for v in coef), fit=report,
                       decode_step_s=measured_decode_step_s(rows))


__all__ = ["Calibration", "FitReport", "fit_calibration", "load_calibration", "parse_calibration",
           "load_measured", "predict_ttft", "nnls_small", "huber_nnls"]
