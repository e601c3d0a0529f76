"""Frozen, validated workload description the generator consumes (no pydantic past the edge).

``simkv.workloads.spec`` parses YAML with pydantic and converts to these dataclasses; the
generator only ever sees them.  Every quantity carries its unit in its name.  Distributions
sample from a generator that is passed in (one ``SeedSequence`` stream per purpose), never a
global one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Distribution kinds and the parameters each one needs.
DIST_PARAMS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "normal": ("mean", "std"),
    "lognormal": ("median", "sigma"),
    "exponential": ("mean",),
    "geometric": ("mean",),
    "poisson": ("mean",),
    "choice": ("values",),
}


@dataclass(frozen=True)
class Dist:
    """A 1-D distribution of non-negative numbers, optionally clipped and rounded.

    ``geometric`` counts trials (support 1, 2, ...; ``mean >= 1``); ``poisson`` is shifted to
    never go below ``min``; ``choice`` draws from ``values`` with optional ``weights``.
    ``multiple_of`` rounds *up* to a multiple (e.g. block-aligned document lengths).
    """

    kind: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    median: float | None = None
    sigma: float | None = None
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None
    multiple_of: int | None = None

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` float draws (before integer rounding)."""
        k = self.kind
        if k == "constant":
            x = np.full(n, float(self.value))
        elif k == "uniform":
            x = rng.uniform(self.low, self.high, n)
        elif k == "normal":
            x = rng.normal(self.mean, self.std, n)
        elif k == "lognormal":
            x = rng.lognormal(np.log(self.median), self.sigma, n)
        elif k == "exponential":
            x = rng.exponential(self.mean, n)
        elif k == "geometric":
            x = rng.geometric(1.0 / self.mean, n).astype(np.float64)
        elif k == "poisson":
            x = rng.poisson(self.mean, n).astype(np.float64)
        elif k == "choice":
            vals = np.asarray(self.values, dtype=np.float64)
            if self.weights:
                w = np.asarray(self.weights, dtype=np.float64)
                cdf = np.cumsum(w / w.sum())
                idx = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(vals) - 1)
            else:
                idx = rng.integers(0, len(vals), n)
            x = vals[idx]
        else:  # pragma: no cover - the spec layer only builds known kinds
            raise ValueError(f"unknown distribution {k!r}")
        if self.min is not None or self.max is not None:
            x = np.clip(x, self.min if self.min is not None else -np.inf,
                        self.max if self.max is not None else np.inf)
        return x

    def sample_int(self, rng: np.random.Generator, n: int, *, floor: int = 0) -> np.ndarray:
        """Integer draws (rounded, at least ``floor``, rounded up to ``multiple_of``)."""
        x = np.maximum(np.rint(self.sample(rng, n)), floor).astype(np.int64)
        if self.multiple_of:
            m = int(self.multiple_of)
            x = -(-x // m) * m
        return x

    def mean_value(self) -> float:
        """Expected value before clipping/rounding (for estimates and docs)."""
        k = self.kind
        if k == "constant":
            return float(self.value)
        if k == "uniform":
            return (self.low + self.high) / 2
        if k in ("normal", "exponential", "geometric", "poisson"):
            return float(self.mean)
        if k == "lognormal":
            return float(self.median * np.exp(self.sigma ** 2 / 2))
        vals = np.asarray(self.values, dtype=np.float64)
        w = np.asarray(self.weights or [1.0] * len(vals), dtype=np.float64)
        return float((vals * w).sum() / w.sum())


def constant(value: float) -> Dist:
    return Dist("constant", value=float(value))


@dataclass(frozen=True)
class Burst:
    """Arrival rate multiplied by ``multiplier`` in [start_s, start_s + duration_s),
    repeated every ``repeat_every_s`` when set."""

    start_s: float
    duration_s: float
    multiplier: float
    repeat_every_s: float | None = None


@dataclass(frozen=True)
class Arrivals:
    """Non-homogeneous Poisson session arrivals: ``rate_per_day`` times the diurnal weight of
    the hour (24 weights normalised to mean 1) times any active burst multipliers."""

    rate_per_day: float
    diurnal: tuple[float, ...] | None = None
    bursts: tuple[Burst, ...] = ()


@dataclass(frozen=True)
class Templates:
    """A templated prefix component (system prompts or tool definitions).

    ``count`` templates with Zipf(``zipf``) popularity, one chosen per session with
    probability ``probability``; every template gets a new version (new content, new hashes)
    at each time in ``change_at_s`` and every ``change_every_s``.
    """

    count: int
    zipf: float
    tokens: Dist
    probability: float = 1.0
    change_every_s: float | None = None
    change_at_s: tuple[float, ...] = ()


@dataclass(frozen=True)
class Documents:
    """A corpus of ``corpus`` documents retrieved with Zipf(``zipf``) popularity;
    a turn retrieves with probability ``probability``, then ``per_request`` documents."""

    corpus: int
    zipf: float
    tokens: Dist
    per_request: Dist = field(default_factory=lambda: constant(1))
    probability: float = 1.0


@dataclass(frozen=True)
class History:
    """What of earlier turns a prompt carries: ``full``, ``window`` (last ``window_turns``
    turns) or ``none``; ``include_documents`` keeps earlier turns' retrieved documents."""

    mode: str = "full"
    window_turns: int | None = None
    include_documents: bool = True


@dataclass(frozen=True)
class Tenants:
    """``count`` tenants, Zipf(``zipf``) share of sessions (uniform when None).
    ``isolated``: each tenant's hash chain is salted (vLLM's ``cache_salt``) so nothing is
    shared across tenants.  ``shared_content``: all tenants use the same templates and corpus
    (otherwise each tenant has its own)."""

    count: int = 1
    zipf: float | None = None
    isolated: bool = False
    shared_content: bool = True


@dataclass(frozen=True)
class WorkloadSpec:
    """A whole workload.  ``digest`` identifies the validated spec (recorded in trace meta)."""

    name: str
    description: str
    duration_s: float
    seed: int
    block_tokens: int
    arrivals: Arrivals
    turns: Dist
    think_time_s: Dist
    system: Templates | None
    tools: Templates | None
    documents: Documents | None
    user_tokens: Dist
    output_tokens: Dist
    history: History
    models: tuple[str, ...]
    model_weights: tuple[float, ...]
    tenants: Tenants
    resets_s: tuple[float, ...] = ()
    digest: str = ""
    source: str = ""
