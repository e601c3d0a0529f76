"""The validation layer (simkv/validate.py) and the resource guard (simkv/guard.py)."""

from __future__ import annotations

import math

import pytest
import typer
from pydantic import ValidationError

from simkv import guard
from simkv.cli.main import run, split_max_memory
from simkv.errors import InputError
from simkv.validate import (
    INT64_MAX,
    OPTION_BOUNDS,
    UserModel,
    check_number,
    count,
    harden,
    numeric_params,
    real,
)


@pytest.mark.parametrize("value, bound, message", [
    (float("nan"), real(), "must be a finite number"),
    (math.inf, real(), "must be a finite number"),
    (True, count(), "must be an integer, got True"),
    (False, real(), "must be a number, got False"),
    ("3", count(), "must be an integer"),
    (2.5, count(), "must be a whole number, got 2.5"),
    (-1, count(), "must be >= 0, got -1"),
    (0, count(1, 10), "must be > 0, got 0"),
    (0.0, real(0.0, 1.0, lo_open=True), "must be > 0"),
    (1.0, real(0.0, 1.0, hi_open=True), "must be < 1"),
    (10**20, count(0, INT64_MAX), "must be <= 2^63 - 1, got 1e+20"),
    (10**400, count(), "must be <= "),
])
def test_check_number_refuses(value, bound, message):
    with pytest.raises(InputError, match="^--x: " + message.replace("(", r"\(").replace(
            ")", r"\)").replace("+", r"\+").replace("^", r"\^")):
        check_number(value, bound, "--x")


@pytest.mark.parametrize("value, bound, expected", [
    (3, count(), 3), (3.0, count(), 3), (0.5, real(0.0, 1.0), 0.5), (0, count(0, 0), 0),
])
def test_check_number_accepts(value, bound, expected):
    out = check_number(value, bound, "--x")
    assert out == expected and type(out) is type(expected)


def _toy_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def go(seed: int = typer.Option(0, "--seed"), brand_new: float = typer.Option(1.0, "--brand-new"),
           flag: bool = typer.Option(False, "--flag")) -> None:
        typer.echo(f"{seed} {brand_new}")

    return app


def test_harden_covers_an_option_it_has_never_seen(capsys):
    """An option not in OPTION_BOUNDS still gets the default check (finite, >= 0)."""
    assert "--brand-new" not in OPTION_BOUNDS
    names = {n for _, n, _ in numeric_params(harden(typer.main.get_command(_toy_app())))}
    assert names == {"--seed", "--brand-new"}  # the bool flag is not a number
    for argv, needle in ((["--brand-new", "nan"], "--brand-new: must be a finite number"),
                         (["--brand-new", "-2"], "--brand-new: must be >= 0"),
                         (["--seed", "-1"], "--seed: must be >= 0")):
        with pytest.raises(SystemExit) as exc:
            run(_toy_app(), argv)
        assert exc.value.code == 2
        assert needle in capsys.readouterr().err
    assert run(_toy_app(), ["--seed", "7", "--brand-new", "0.5"]) == 0
    assert capsys.readouterr().out == "7 0.5\n"


class _Schema(UserModel):
    n: int
    x: float
    on: bool = False
    ids: list[int] = []


@pytest.mark.parametrize("data, loc", [
    ({"n": True, "x": 1.0}, "n"), ({"n": 1, "x": False}, "x"), ({"n": 1, "x": float("nan")}, "x"),
    ({"n": 1, "x": math.inf}, "x"), ({"n": 1, "x": 1.0, "ids": [1, True]}, "ids"),
])
def test_user_model_refuses_bools_and_non_finite(data, loc):
    with pytest.raises(ValidationError) as exc:
        _Schema(**data)
    assert exc.value.errors()[0]["loc"][0] == loc


def test_user_model_keeps_real_bools():
    assert _Schema(n=1, x=2.0, on=True).on is True


def test_split_max_memory_anywhere(monkeypatch):
    monkeypatch.delenv(guard.ENV_VAR, raising=False)
    assert split_max_memory(["simulate", "--max-memory", "1GiB", "--x"]) == (
        ["simulate", "--x"], 1024**3)
    assert split_max_memory(["--max-memory=2kB", "models", "list"]) == (["models", "list"], 2000)
    assert split_max_memory(["models", "list"]) == (["models", "list"], None)
    monkeypatch.setenv(guard.ENV_VAR, "3MB")
    assert split_max_memory(["models"]) == (["models"], 3_000_000)
    with pytest.raises(InputError, match="--max-memory: needs a size"):
        split_max_memory(["models", "--max-memory"])


def test_guard_check_names_the_estimate_and_the_bound():
    with guard.limit(1000):
        guard.check(1000, "exactly the bound")  # at the bound is fine
        with pytest.raises(guard.ResourceLimitError,
                           match=r"--max-memory: --bootstrap 9 needs about 1.95 KiB of memory, "
                                 r"over the --max-memory bound of 1000 B"):
            guard.check(2000, "--bootstrap 9")
        with pytest.raises(guard.ResourceLimitError, match="an unbounded amount"):
            guard.check(float("inf"), "a burst storm")
        with pytest.raises(guard.ResourceLimitError):
            guard.check(float("nan"), "a NaN estimate")


def test_guard_default_is_80_percent_of_available_memory():
    with guard.limit(None):
        assert guard.limit_bytes() == pytest.approx(0.8 * guard.available_bytes(), rel=0.05)


def test_every_declared_bound_belongs_to_a_numeric_option():
    """OPTION_BOUNDS holds no stale names: each is an int/float option of simkv or
    simkv-harness (so a renamed option cannot silently lose its bounds)."""
    import harness.cli as harness_cli
    from simkv.cli.main import build_app

    names = set()
    for app in (build_app(), harness_cli.app):
        names |= {n for _, n, _ in numeric_params(typer.main.get_command(app))}
    assert set(OPTION_BOUNDS) <= names, sorted(set(OPTION_BOUNDS) - names)
