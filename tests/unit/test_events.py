"""Each lifecycle event handler on its own: a run with hand-placed entries, one event, the state.

Entries are written straight into the levels (no simulation), so each expected state below is
worked out by hand from the handler's docstring.  The end-to-end behaviour through
``simulate_levels`` is tested in test_lifecycle.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from simkv.errors import InputError
from simkv.sizing.events import EVENTS
from simkv.sizing.levelrun import LevelsRun, level_states
from simkv.sizing.levels import Hierarchy, StorageLevel
from simkv.sizing.levelstate import Entry
from simkv.sizing.lifecycle import Event
from simkv.trace.model import TAG_CODES, Trace

A, B = "llama-3.1-8b", "qwen3-8b"
SYS, USER = 1 << TAG_CODES["system"], 1 << TAG_CODES["user"]
LEVELS = (StorageLevel("hbm", 1000, 16, 1e9, 1e9), StorageLevel("dram", 1000, 16, 1e9, 1e9),
          StorageLevel("bucket", 1000, 16, 1e9, 1e9, persistent=True))


def make_run(tags: bool = True) -> LevelsRun:
    """Three levels; each holds keys 1 (model A, system, 10 B), 2 (model B, user, 20 B) and
    3 (model A, user, 30 B), inserted in that order (1 is least recently used)."""
    trace = Trace.from_arrays(
        block_tokens=16, arrival_s=[0.0, 1.0], input_tokens=[16, 16], output_tokens=[1, 1],
        block_offsets=[0, 1, 2], block_hashes=np.array([5, 6], dtype=np.uint64),
        block_tags=np.array([0, 0], dtype=np.int8) if tags else None,
        model_index=[0, 1], models=(A, B))
    h = Hierarchy(LEVELS)
    model_idx = {A: 0, B: 1}
    run = LevelsRun(trace, h, model_idx, level_states(trace, h, model_idx))
    for s in run.state:
        for key, size, model, mask in ((1, 10, 0, SYS), (2, 20, 1, USER), (3, 30, 0, USER)):
            s.insert(key, Entry(size, model, mask, 0.0))
    return run


def keys(run: LevelsRun, j: int) -> list:
    return list(run.state[j].lru.keys())


def apply(run: LevelsRun, kind: str, r: int = 0, **params) -> None:
    ev = Event(5.0, kind, params)
    spec = EVENTS.get(kind)
    spec.check(run, ev)
    spec.apply(run, ev, r)


def test_every_documented_kind_is_registered():
    assert EVENTS.names() == sorted(["model_upgrade", "quota", "replica_restart", "reset",
                                     "reset_bucket", "template_change", "tier_upgrade"])


@pytest.mark.parametrize("kind", ["reset", "reset_bucket"])
def test_reset_empties_only_the_named_level(kind):
    run = make_run()
    apply(run, kind)                          # default: the persistent bucket
    assert keys(run, 2) == [] and run.state[2].used == 0
    assert keys(run, 0) == keys(run, 1) == [1, 2, 3]
    apply(run, kind, level="hbm")
    assert keys(run, 0) == [] and keys(run, 1) == [1, 2, 3]


def test_reset_of_an_unknown_level_is_an_input_error():
    with pytest.raises(InputError, match="ssd"):
        apply(make_run(), "reset", level="ssd")


def test_replica_restart_clears_non_persistent_levels():
    run = make_run()
    apply(run, "replica_restart")
    assert keys(run, 0) == keys(run, 1) == []
    assert keys(run, 2) == [1, 2, 3] and run.state[2].used == 60


def test_model_upgrade_drops_that_model_everywhere():
    run = make_run()
    apply(run, "model_upgrade", model=A)
    for j in range(3):
        assert keys(run, j) == [2]
        assert run.state[j].by_model == {0: 0, 1: 20}   # a model seen stays listed, at 0 bytes


def test_model_upgrade_of_a_model_the_trace_lacks_is_an_input_error():
    with pytest.raises(InputError, match="does not use"):
        apply(make_run(), "model_upgrade", model="gpt-7")


def test_tier_upgrade_keeps_entries_and_a_downgrade_evicts_lru_first():
    run = make_run()
    apply(run, "tier_upgrade", capacity_bytes=5000)
    assert run.state[2].capacity == 5000 and keys(run, 2) == [1, 2, 3]
    apply(run, "tier_upgrade", r=1, level="dram", capacity_bytes=35)
    assert keys(run, 1) == [3]                          # 60 B -> 35 B: drop 1 (10) and 2 (20)
    assert run.rec["evicted_bytes"].tolist() == [0, 30]
    apply(run, "tier_upgrade", r=7, level="hbm", capacity_bytes=0)   # after the last request
    assert keys(run, 0) == [] and run.rec["evicted_bytes"].tolist() == [0, 90]


def test_quota_evicts_that_models_lru_entries():
    run = make_run()
    apply(run, "quota", model=A, capacity_bytes=30)     # model A holds 10 + 30 = 40 B
    assert keys(run, 2) == [2, 3]                       # its least recent entry (1) goes
    assert run.state[2].quotas == {0: 30}
    assert run.rec["evicted_bytes"].tolist() == [10, 0]
    assert keys(run, 0) == [1, 2, 3]                    # other levels untouched


def test_template_change_of_a_component_marks_its_entries_stale():
    run = make_run()
    apply(run, "template_change", component="system")
    assert run.versions == {"system": 1}
    for s in run.state:
        assert s.stale == 10 and s.is_stale(1) and not s.is_stale(3)
        assert s.used == 60                             # stale bytes keep their room
    apply(run, "template_change", component="system")
    assert run.versions == {"system": 2}
    apply(run, "template_change", component="user", version=7)
    assert run.versions == {"system": 2, "user": 7} and run.state[0].stale == 60


def test_template_change_without_tags_or_component_stales_everything():
    run = make_run(tags=False)
    apply(run, "template_change", component="system")   # untagged trace: the whole prompt
    assert all(s.stale == 60 for s in run.state)
    run = make_run()
    apply(run, "template_change")
    assert run.versions == {None: 1} and all(s.stale == 60 for s in run.state)
