"""Workload spec validation: every bad field gives one InputError naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simkv.errors import InputError
from simkv.workloads import example_workloads, load_spec, spec_from_dict

BASE = {
    "name": "t",
    "duration": "2h",
    "arrivals": {"rate_per_day": 1000},
    "system": {"templates": 2, "tokens": 1000},
    "user": {"tokens": {"dist": "lognormal", "median": 50, "sigma": 0.5}},
    "output": {"tokens": 100},
    "models": [{"name": "qwen3-32b"}],
}


def write(tmp_path: Path, data: dict, name: str = "w.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def with_(path: tuple, value) -> dict:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    return data


def test_valid_spec_converts_to_frozen_dataclasses(tmp_path):
    spec = load_spec(write(tmp_path, BASE))
    assert spec.name == "t" and spec.duration_s == 7200.0 and spec.block_tokens == 256
    assert spec.system.count == 2 and spec.system.tokens.kind == "constant"
    assert spec.models == ("qwen3-32b",) and spec.model_weights == (1.0,)
    assert spec.turns.kind == "constant" and spec.history.mode == "full"
    assert len(spec.digest) == 16
    with pytest.raises(AttributeError):
        spec.seed = 3  # frozen


def test_digest_changes_with_content_and_name_defaults_to_file_stem(tmp_path):
    a = load_spec(write(tmp_path, BASE))
    b = load_spec(write(tmp_path, with_(("arrivals", "rate_per_day"), 1001), "b.yaml"))
    assert a.digest != b.digest
    data = dict(BASE)
    del data["name"]
    assert load_spec(write(tmp_path, data, "my-load.yaml")).name == "my-load"


@pytest.mark.parametrize("path,value,field,message", [
    (("arrivals", "rate_per_day"), -5, "arrivals.rate_per_day", "must be > 0"),
    (("arrivals", "rate_per_day"), 0, "arrivals.rate_per_day", "must be > 0"),
    (("arrivals", "burstiness"), 3, "arrivals.burstiness", "unknown key"),
    (("colour",), "blue", "colour", "unknown key"),
    (("system", "zipf"), 0, "system.zipf", "must be > 0"),
    (("system", "zipf"), -1.2, "system.zipf", "must be > 0"),
    (("system", "probability"), 1.5, "system.probability", "must be <= 1"),
    (("system", "probability"), -0.1, "system.probability", "must be >= 0"),
    (("documents",), {"corpus": 10, "tokens": 100, "probability": 2}, "documents.probability",
     "must be <= 1"),
    (("documents",), {"corpus": 10, "tokens": 100, "zipf": 0}, "documents.zipf", "must be > 0"),
    (("tenants",), {"count": 3, "zipf": 0}, "tenants.zipf", "must be > 0"),
    (("models",), [], "models", "must not be empty"),
    (("models",), [{"name": "gpt-7"}], "models[0].name", "unknown model 'gpt-7'"),
    (("models",), [{"name": "qwen3-32b", "weight": 0}], "models[0].weight", "must be > 0"),
    (("sessions",), {"turns": {"dist": "geometric", "mean": 0.5}}, "sessions.turns",
     "mean must be >= 1"),
    (("sessions",), {"turns": {"dist": "geometric"}}, "sessions.turns", "needs 'mean'"),
    (("sessions",), {"turns": {"dist": "constant", "value": 2, "mean": 3}}, "sessions.turns",
     "'mean' does not apply"),
    (("sessions",), {"think_time_s": {"dist": "gamma", "mean": 3}}, "sessions.think_time_s.dist",
     "Input should be"),
    (("user", "tokens"), {"dist": "uniform", "low": 10, "high": 5}, "user.tokens",
     "low <= high"),
    (("history",), {"mode": "window"}, "history", "needs window_turns"),
    (("arrivals", "diurnal"), [1.0] * 23, "arrivals.diurnal", "needs 24 hourly weights"),
    (("duration",), "soon", "duration", "not a duration"),
    (("duration",), 0, "duration", "must be > 0"),
    (("system", "change_every"), "-3d", "system.change_every", "not a duration"),
])
def test_bad_field_names_file_and_field(tmp_path, path, value, field, message):
    spec_file = write(tmp_path, with_(path, value))
    with pytest.raises(InputError) as err:
        load_spec(spec_file)
    text = str(err.value)
    assert text.startswith(f"{spec_file}: field {field}: "), text
    assert message in text
    assert "\n" not in text


def test_missing_required_section(tmp_path):
    data = dict(BASE)
    del data["user"]
    with pytest.raises(InputError, match=r"field user: required key is missing"):
        load_spec(write(tmp_path, data))


def test_several_problems_are_counted_in_one_line(tmp_path):
    data = with_(("arrivals", "rate_per_day"), -1)
    data["colour"] = 1
    with pytest.raises(InputError, match=r"and 1 more problem"):
        load_spec(write(tmp_path, data))


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\narrivals: {rate_per_day: 3\nmodels: [\n")
    with pytest.raises(InputError, match=rf"^{path}: line \d+: malformed YAML"):
        load_spec(path)


def test_not_a_mapping_and_missing_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_spec(path)
    with pytest.raises(InputError, match="workload spec not found"):
        load_spec(tmp_path / "nope.yaml")


def test_bare_number_means_constant():
    spec = spec_from_dict(with_(("output", "tokens"), 123))
    assert spec.output_tokens.kind == "constant" and spec.output_tokens.value == 123


def test_every_example_workload_validates():
    names = {w.name for w in example_workloads()}
    assert {"brief-system-prefix", "support-assistant", "agent-loop", "rag-zipf",
            "multi-tenant-mix", "prompt-evolution"} <= names
    for w in example_workloads():
        spec = load_spec(w.path)
        assert spec.name == w.name and w.description
        assert w.path.read_text().startswith("#"), f"{w.path} needs a comment header"
