"""Bounded fuzzing of the YAML parsers (workload specs, price books, levels, calibrations):
any document either loads or raises the clean one-line InputError naming the file.

Mutations start from the shipped, valid files (the interesting region: right keys, wrong
values), plus random text and random YAML-ish structures.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkv.economics.pricebook import default_pricebook_dir, load_pricebook
from simkv.errors import InputError
from simkv.latency.calibrate import load_calibration
from simkv.sizing.config import load_hierarchy
from simkv.workloads.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "workloads").glob("*.yaml"))
BOOKS = sorted(p for p in default_pricebook_dir().iterdir() if p.name.endswith(".yaml"))
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.sampled_from(["5m", "1h", "inf", "-1", "10GiB", "ten", "", "0"]))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), c, max_size=3)),
                      max_leaves=6)


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _mutate(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _check(loader, path: Path) -> None:
    try:
        loader(path)
    except InputError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(path) in msg, msg


@FUZZ
@given(data=st.data(), value=values,
       target=st.sampled_from([(SPECS, load_spec), (BOOKS, load_pricebook)]))
def test_shipped_file_mutations(tmp_path_factory, data, value, target):
    """One value anywhere in a shipped workload spec or price book replaced by anything."""
    sources, loader = target
    doc = yaml.safe_load(data.draw(st.sampled_from(sources)).read_text())
    path = data.draw(st.sampled_from(list(_paths(doc))))
    p = tmp_path_factory.mktemp("fz") / "mutated.yaml"
    p.write_text(yaml.safe_dump(_mutate(doc, path, value)))
    _check(loader, p)


@FUZZ
@given(text=st.text(max_size=300), loader=st.sampled_from([load_spec, load_pricebook,
                                                          load_hierarchy, load_calibration]))
def test_yaml_parsers_on_random_text(tmp_path_factory, text, loader):
    p = tmp_path_factory.mktemp("fz") / "x.yaml"
    p.write_text(text)
    _check(loader, p)


@FUZZ
@given(doc=st.dictionaries(st.sampled_from(["name", "duration", "seed", "arrivals", "models",
                                            "kind", "levels", "tiers", "intercept_s", "block_tokens"]),
                           values, max_size=5),
       loader=st.sampled_from([load_spec, load_pricebook, load_hierarchy, load_calibration]))
def test_yaml_parsers_on_random_structures(tmp_path_factory, doc, loader):
    p = tmp_path_factory.mktemp("fz") / "x.yaml"
    p.write_text(yaml.safe_dump(doc))
    _check(loader, p)
