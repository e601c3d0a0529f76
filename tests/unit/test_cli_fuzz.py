"""A CLI fuzzer generated from the CLI itself (issue 14).

Every command and every option of ``simkv`` and ``simkv-harness`` is discovered from the
typer apps, so an option added later is fuzzed without editing this file.  Each command runs
in-process through the CLI's entry point (:func:`simkv.cli.main.run`) from a baseline
argument list on tiny fixtures, with one option (or positional argument) replaced by a
hostile value: NaN, inf, -1, 0, 1e300, 10^20, empty, a word, a unicode string, 100 kB of
text, a directory, a missing path, /dev/full.  The outcome must be exit 0 or exit 2 with
exactly one line on stderr, never a traceback (an unexpected exception fails the test: it is
a bug to fix, not something to catch).

``make test`` takes a fixed-seed sample of :data:`SAMPLE_PER_OPTION` values per option;
``make fuzz`` (``SIMKV_FUZZ=all``) runs the whole matrix.  ``serve`` gets a stub engine.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main

import harness.cli as harness_cli
from simkv.cli.main import build_app, run

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "tests" / "bad_inputs" / "files"
SAMPLE_PER_OPTION = 3
SEED = 14
FULL = os.environ.get("SIMKV_FUZZ", "") == "all"
#: Commands whose every successful run is long (a whole report): one value per option.
SLOW = {"simkv report"}

HOSTILE: dict[str, str] = {
    "nan": "nan", "inf": "inf", "minus_one": "-1", "zero": "0", "huge_float": "1e300",
    "huge_int": "1" + "0" * 20, "empty": "", "word": "banana",
    "unicode": "ünï©ødé ☃ \u202e\u00a0", "long": "x" * 100_000, "directory": "{dir}",
    "missing": "{tmp}/missing/nope.jsonl", "dev_full": "/dev/full",
}

#: Baseline argument lists: positionals first (in declaration order), then options.
#: {trace} tiny Mooncake JSONL, {parquet} the same as simkv Parquet, {tmp} the case's folder.
BASELINES: dict[str, list[str]] = {
    "simkv calibrate": ["--measured", "{measured}", "--out", "{tmp}/calib.yaml"],
    "simkv compare": ["--trace", "{trace}", "--model", "llama-3.1-8b", "--bootstrap", "5"],
    "simkv recommend": ["--trace", "{trace}", "--model", "llama-3.1-8b"],
    "simkv lifecycle": ["--trace", "{trace}", "--model", "llama-3.1-8b",
                        "--out-dir", "{tmp}/life"],
    "simkv report": ["--trace", "{trace}", "--model", "llama-3.1-8b", "--quick",
                     "--out", "{tmp}/report"],
    "simkv run": ["--trace", "{trace}", "--model", "llama-3.1-8b", "--quick", "--out", "{tmp}/run",
                  "--stage", "simulate"],
    "simkv simulate": ["--trace", "{trace}", "--capacity-blocks", "50",
                       "--records", "{tmp}/records.parquet"],
    "simkv sweep": ["--trace", "{trace}", "--capacities-blocks", "10,100", "--executor", "inline",
                    "--out", "{tmp}/grid.parquet"],
    "simkv cost case": ["--prefix-tokens", "32000", "--per-day", "2000", "--usd-per-mtok", "0.15"],
    "simkv cost pricebooks": [],
    "simkv models list": [],
    "simkv models show": ["llama-3.1-8b"],
    "simkv trace stats": ["{trace}"],
    "simkv trace convert": ["{trace}", "{tmp}/converted.parquet"],
    "simkv trace scale": ["{trace}", "{tmp}/scaled.parquet", "--factor", "0.5"],
    "simkv trace slice": ["{trace}", "{tmp}/sliced.parquet", "--sessions", "2", "--seed", "1"],
    "simkv trace import": ["{alibaba}", "{tmp}/imported.parquet", "--format", "alibaba"],
    "simkv trace partition": ["{trace}", "--shards", "2", "--out", "{tmp}/parts"],
    "simkv workload generate": ["{spec}", "--out", "{tmp}/generated.parquet"],
    "simkv workload list": [],
    "simkv-harness serve": ["--model-config", "tiny-llama-2l"],
    "simkv-harness replay": ["--trace", "{trace}", "--endpoint", "http://127.0.0.1:9",
                             "--out", "{tmp}/replay", "--no-warmup"],
    "simkv-harness validate": ["--trace", "{trace}", "--endpoint", "http://127.0.0.1:9",
                               "--out", "{tmp}/validate"],
    "simkv-harness probe-trace": ["--out", "{tmp}/probe.parquet"],
}

TINY_SPEC = """\
name: fuzz-tiny
duration: 10m
seed: 1
block_tokens: 16
arrivals:
  rate_per_day: 2000
sessions:
  turns: 2
system:
  templates: 1
  tokens: 64
user:
  tokens: {dist: lognormal, median: 20, sigma: 0.5, min: 1, max: 100}
output:
  tokens: {dist: lognormal, median: 10, sigma: 0.5, min: 1, max: 50}
models:
  - name: llama-3.1-8b
"""

ALIBABA = "\n".join([
    '{"chat_id": 1, "parent_chat_id": -1, "timestamp": 1.0, "input_length": 20, '
    '"output_length": 5, "type": "text", "turn": 1, "hash_ids": [1, 2]}',
    '{"chat_id": 2, "parent_chat_id": 1, "timestamp": 2.0, "input_length": 40, '
    '"output_length": 5, "type": "text", "turn": 2, "hash_ids": [1, 2, 3]}',
]) + "\n"


@dataclass(frozen=True)
class Case:
    prog: str
    command: str          # "simkv simulate"
    option: str           # "--capacity-blocks" or "#0" for the first positional argument
    value: str            # a key of HOSTILE

    @property
    def id(self) -> str:
        return f"{self.command.replace(' ', '_')}:{self.option}={self.value}"


def _apps() -> dict[str, object]:
    return {"simkv": build_app(), "simkv-harness": harness_cli.app}


def _leaves(cmd, path: str):
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _leaves(sub, f"{path} {name}")
    else:
        yield path, cmd


def discover() -> list[tuple[str, str, list[str]]]:
    """(prog, command path, fuzzable parameter names) for every leaf command of both CLIs."""
    out = []
    for prog, app in _apps().items():
        for path, cmd in _leaves(typer.main.get_command(app), prog):
            names, n_pos = [], 0
            for p in cmd.params:
                if getattr(p, "is_flag", False) or getattr(p, "is_bool_flag", False):
                    continue
                if p.param_type_name == "argument":
                    names.append(f"#{n_pos}")
                    n_pos += 1
                else:
                    names.append(max(p.opts, key=len))
            out.append((prog, path, names + ["#extra"]))
    return out


def _cases() -> list[Case]:
    rng = random.Random(SEED)
    cases = []
    for prog, path, names in discover():
        for name in names:
            values = list(HOSTILE)
            if not FULL:
                k = 1 if path in SLOW else SAMPLE_PER_OPTION
                values = rng.sample(values, k)
            cases += [Case(prog, path, name, v) for v in values]
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, str]:
    from simkv.trace import load_trace, save_trace

    root = tmp_path_factory.mktemp("fuzz_fixtures")
    trace = root / "tiny.jsonl"
    shutil.copy(FILES / "good.jsonl", trace)
    save_trace(load_trace(trace), root / "tiny.parquet")
    (root / "spec.yaml").write_text(TINY_SPEC)
    (root / "alibaba.jsonl").write_text(ALIBABA)
    (root / "adir").mkdir()
    return {"trace": str(trace), "parquet": str(root / "tiny.parquet"),
            "spec": str(root / "spec.yaml"), "alibaba": str(root / "alibaba.jsonl"),
            "measured": str(ROOT / "tests" / "data" / "measured" / "records_a.parquet"),
            "dir": str(root / "adir")}


def _fill(text: str, subst: dict[str, str]) -> str:
    for key, value in subst.items():
        text = text.replace("{" + key + "}", value)
    return text


def build_argv(case: Case, subst: dict[str, str]) -> list[str]:
    """The command's baseline with one parameter set to the hostile value."""
    base = [_fill(a, subst) for a in BASELINES.get(case.command, [])]
    value = _fill(HOSTILE[case.value], subst)
    words = case.command.split()[1:]
    if case.option == "#extra":  # one argument too many
        base.append(value)
    elif case.option.startswith("#"):
        i = int(case.option[1:])
        positional = [j for j, a in enumerate(base) if not a.startswith("-")
                      and (j == 0 or not base[j - 1].startswith("-"))]
        if i < len(positional):
            base[positional[i]] = value
        else:
            base.append(value)
    elif case.option in base:
        base[base.index(case.option) + 1] = value
    else:
        base += [case.option, value]
    return words + base


class _StubStack:
    """Stands in for the real vLLM launcher: starts nothing, exits at once."""

    def __init__(self, options) -> None:
        self.options = options
        self.endpoint = f"http://127.0.0.1:{getattr(options, 'port', 0)}"
        self.lmcache_metrics_url = None

    def start(self) -> None:
        return None

    def alive(self) -> bool:
        return False

    def stop(self) -> None:
        return None


def _stub_engine(monkeypatch) -> None:
    for name, mod in list(sys.modules.items()):
        if name.startswith("harness") and hasattr(mod, "EngineStack"):
            monkeypatch.setattr(mod, "EngineStack", _StubStack)
    monkeypatch.setattr(signal, "signal", lambda *a, **k: None)


def invoke(prog: str, argv: list[str]) -> int:
    app = build_app() if prog == "simkv" else harness_cli.app
    try:
        return run(app, argv, prog=prog)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_every_command_has_a_baseline():
    """A new command must say how to run it on tiny fixtures (options need nothing)."""
    missing = [path for _, path, _ in discover() if path not in BASELINES]
    assert not missing, f"add a baseline to BASELINES for: {missing}"


def test_every_option_is_fuzzed():
    assert {c.command for c in CASES} >= set(BASELINES)
    assert len(CASES) >= 3 * len(BASELINES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_fuzz(case: Case, fixtures, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIMKV_API_KEY", raising=False)
    monkeypatch.setenv("SIMKV_MAX_MEMORY", "2GiB")
    if case.command == "simkv-harness serve":
        _stub_engine(monkeypatch)
    argv = build_argv(case, {**fixtures, "tmp": str(tmp_path)})
    rc = invoke(case.prog, argv)
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc in (0, 2), f"exit {rc}: {err[-2000:]}"
    assert "Traceback" not in err
    if rc == 2:
        assert len(lines) == 1, err[-2000:]


def _prog(command: str) -> str:
    return command.split()[0]


#: Baselines that must fail, and the words their one line must hold (a closed port).
FAILING_BASELINES = {"simkv-harness replay": "http://127.0.0.1:9",
                     "simkv-harness validate": "http://127.0.0.1:9"}


@pytest.mark.parametrize("command", sorted(BASELINES))
def test_baseline_runs(command, fixtures, tmp_path, monkeypatch, capsys):
    """Each baseline works as given (exit 0), so in a fuzz case the hostile value is the only
    change; the harness baselines point at a closed port and fail in one line naming it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIMKV_MAX_MEMORY", "2GiB")
    if command == "simkv-harness serve":
        _stub_engine(monkeypatch)
    argv = command.split()[1:] + [_fill(a, {**fixtures, "tmp": str(tmp_path)})
                                  for a in BASELINES[command]]
    rc = invoke(_prog(command), argv)
    _, err = capsys.readouterr()
    if command in FAILING_BASELINES:
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert FAILING_BASELINES[command] in err, err
    else:
        assert rc == 0, err
