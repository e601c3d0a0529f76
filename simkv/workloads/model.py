"""Frozen, validated workload description the generator consumes (no pydantic past the edge).

``simkv.workloads.spec`` parses YAML with pydantic and converts to these dataclasses; the
generator only ever sees them.  Every quantity carries its unit in its name.  Distributions
sample from a generator that is passed in (one ``SeedSequence`` stream per purpose), never a
global one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simkv.workloads.distributions import DISTRIBUTIONS

#: Distribution kinds and the parameters each one needs (from the registry).
DIST_PARAMS: dict[str, tuple[str, ...]] = {name: DISTRIBUTIONS.get(name).params
                                           for name in DISTRIBUTIONS}


@dataclass(frozen=True)
class Dist:
    """A 1-D distribution of non-negative numbers, optionally clipped and rounded.

    ``kind`` is a name in ``simkv.workloads.distributions.DISTRIBUTIONS``, which draws and
    gives the mean.
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
        x = DISTRIBUTIONS.get(self.kind, where="dist").sample(self, rng, n)
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
        return DISTRIBUTIONS.get(self.kind, where="dist").mean(self)


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
