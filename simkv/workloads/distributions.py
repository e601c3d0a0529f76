"""Probability distributions of workload quantities, as a registry (one module per concept).

Each kind names the parameters it needs, how to draw from it, its mean and the checks on its
parameters; the YAML ``dist:`` is the registered name.  The spec layer (``simkv.workloads.spec``)
takes the valid names, parameter lists and checks from here and the frozen ``Dist``
(``simkv.workloads.model``) draws through it, so adding a distribution is registering one
``DistKind`` here, not editing a switch in the spec, the sampler and the mean.

A kind's functions receive the parameter holder (a ``Dist`` or the spec's ``DistModel``: both
carry ``value, low, high, mean, std, median, sigma, values, weights``) and draw from the
generator they are given (one ``SeedSequence`` stream per purpose), never a global one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from simkv.registry import Registry

#: every parameter a distribution may take (the spec rejects those a kind does not use)
PARAM_NAMES = ("value", "low", "high", "mean", "std", "median", "sigma", "values", "weights")


def _no_check(d: Any) -> str | None:
    return None


@dataclass(frozen=True)
class DistKind:
    """One distribution family: required and optional parameters, sampler, mean, checks."""

    name: str
    params: tuple[str, ...]
    sample: Callable[[Any, np.random.Generator, int], np.ndarray]
    mean: Callable[[Any], float]
    check: Callable[[Any], str | None] = _no_check  # an error message, or None when valid
    optional: tuple[str, ...] = ()


DISTRIBUTIONS: Registry[DistKind] = Registry("distribution")


def register_distribution(kind: DistKind) -> DistKind:
    """Add a distribution under ``kind.name`` (a duplicate name is an error)."""
    return DISTRIBUTIONS.register(kind.name, kind)


def _sample_choice(d: Any, rng: np.random.Generator, n: int) -> np.ndarray:
    vals = np.asarray(d.values, dtype=np.float64)
    if d.weights:
        w = np.asarray(d.weights, dtype=np.float64)
        cdf = np.cumsum(w / w.sum())
        idx = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(vals) - 1)
    else:
        idx = rng.integers(0, len(vals), n)
    return vals[idx]


def _mean_choice(d: Any) -> float:
    vals = np.asarray(d.values, dtype=np.float64)
    w = np.asarray(d.weights or [1.0] * len(vals), dtype=np.float64)
    return float((vals * w).sum() / w.sum())


def _check_choice(d: Any) -> str | None:
    if not d.values:
        return "choice needs a non-empty 'values' list"
    if d.weights is not None and (len(d.weights) != len(d.values) or sum(d.weights) <= 0):
        return "choice 'weights' must match 'values' in length and sum to > 0"
    return None


def _mean_param(d: Any) -> float:
    return float(d.mean)


for _kind in (
    DistKind("constant", ("value",), lambda d, rng, n: np.full(n, float(d.value)),
             lambda d: float(d.value)),
    DistKind("uniform", ("low", "high"), lambda d, rng, n: rng.uniform(d.low, d.high, n),
             lambda d: (d.low + d.high) / 2,
             lambda d: "uniform needs low <= high" if d.low > d.high else None),
    DistKind("normal", ("mean", "std"), lambda d, rng, n: rng.normal(d.mean, d.std, n),
             _mean_param),
    DistKind("lognormal", ("median", "sigma"),
             lambda d, rng, n: rng.lognormal(np.log(d.median), d.sigma, n),
             lambda d: float(d.median * np.exp(d.sigma ** 2 / 2))),
    DistKind("exponential", ("mean",), lambda d, rng, n: rng.exponential(d.mean, n), _mean_param,
             lambda d: "exponential needs mean > 0" if d.mean <= 0 else None),
    DistKind("geometric", ("mean",),
             lambda d, rng, n: rng.geometric(1.0 / d.mean, n).astype(np.float64), _mean_param,
             lambda d: "geometric counts trials, so mean must be >= 1" if d.mean < 1 else None),
    DistKind("poisson", ("mean",), lambda d, rng, n: rng.poisson(d.mean, n).astype(np.float64),
             _mean_param),
    DistKind("choice", ("values",), _sample_choice, _mean_choice, _check_choice, ("weights",)),
):
    register_distribution(_kind)
