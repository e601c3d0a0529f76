"""The distribution registry: every kind draws with its documented mean; the spec follows it."""

from __future__ import annotations

import numpy as np
import pytest

from simkv.errors import InputError
from simkv.workloads.distributions import DISTRIBUTIONS
from simkv.workloads.model import DIST_PARAMS, Dist
from simkv.workloads.spec import DistModel

#: one parameter set per kind, with its mean worked out by hand
CASES = {
    "constant": ({"value": 7.0}, 7.0),
    "uniform": ({"low": 2.0, "high": 6.0}, 4.0),
    "normal": ({"mean": 50.0, "std": 5.0}, 50.0),
    "lognormal": ({"median": 100.0, "sigma": 0.5}, 100.0 * np.exp(0.125)),  # median e^(s^2/2)
    "exponential": ({"mean": 3.0}, 3.0),
    "geometric": ({"mean": 4.0}, 4.0),
    "poisson": ({"mean": 9.0}, 9.0),
    "choice": ({"values": (1.0, 5.0), "weights": (3.0, 1.0)}, 2.0),  # (3*1 + 1*5) / 4
}


def test_every_registered_kind_is_covered_here():
    assert sorted(CASES) == DISTRIBUTIONS.names() == sorted(DIST_PARAMS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_mean_and_sample_mean(kind):
    params, mean = CASES[kind]
    d = Dist(kind, **params)
    assert d.mean_value() == pytest.approx(mean)
    x = d.sample(np.random.default_rng(np.random.SeedSequence(1)), 200_000)
    assert x.mean() == pytest.approx(mean, rel=0.02)


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(InputError, match="valid: choice, constant"):
        DISTRIBUTIONS.get("gamma")


def test_spec_checks_come_from_the_registry():
    with pytest.raises(ValueError, match="low <= high"):
        DistModel(dist="uniform", low=5, high=1)
    with pytest.raises(ValueError, match="'sigma' does not apply to normal"):
        DistModel(dist="normal", mean=1, std=1, sigma=2)
    assert DistModel(dist="choice", values=[1, 2], weights=[1, 1]).build().mean_value() == 1.5
