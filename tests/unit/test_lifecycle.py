"""Lifecycle events and the storage view (utilization, bytes by model, stale bytes, components)."""

from __future__ import annotations

import numpy as np
import pytest

from simkv.errors import InputError
from simkv.models import get_model
from simkv.sizing.hierarchy import simulate_levels
from simkv.sizing.levels import Hierarchy, StorageLevel
from simkv.sizing.lifecycle import Event, event_from_dict, parse_event
from simkv.trace.model import TAG_CODES, Trace

A, B = "llama-3.1-8b", "qwen3-8b"
BT = 16
SYS, DOC, USER = TAG_CODES["system"], TAG_CODES["document"], TAG_CODES["user"]


def bb(model: str = A) -> int:
    return get_model(model).block_bytes(BT)


def make_trace(reqs, meta=None) -> Trace:
    """reqs: (time_s, model index, chain ids, tags)."""
    chains = [r[2] for r in reqs]
    offsets = np.zeros(len(reqs) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chains], out=offsets[1:])
    return Trace.from_arrays(
        block_tokens=BT, arrival_s=[r[0] for r in reqs],
        input_tokens=[len(c) * BT for c in chains], output_tokens=np.ones(len(reqs)),
        block_offsets=offsets, block_hashes=np.concatenate([np.asarray(c, np.uint64) for c in chains]),
        block_tags=np.concatenate([np.asarray(r[3], np.int8) for r in reqs]),
        model_index=[r[1] for r in reqs], models=(A, B), meta=meta)


def lv(name, blocks, **kw):
    return StorageLevel(name, None if blocks is None else blocks * bb(B), BT, 1e10, 1e10, **kw)


THREE = (lv("hbm", 100), lv("dram", 100), lv("bucket", None, persistent=True))
PROMPT = ([1, 2, 3], [SYS, SYS, USER])


def served(res, r, level):
    return int(res.records.loc[r, f"served_tokens_{level}"])


def used_at(res, level, t):
    rows = res.timeline[(res.timeline.level == level) & (res.timeline.time_s == t)]
    return int(rows.used_bytes.iloc[-1])


def test_replica_restart_clears_hbm_and_dram_not_bucket():
    trace = make_trace([(0, 0, *PROMPT), (10, 0, *PROMPT), (30, 0, *PROMPT)])
    res = simulate_levels(trace, Hierarchy(THREE), events=[Event(20, "replica_restart")])
    assert served(res, 1, "hbm") == 3 * BT
    assert used_at(res, "hbm", 20) == 0 and used_at(res, "dram", 20) == 0
    assert used_at(res, "bucket", 20) == 3 * bb()
    assert served(res, 2, "bucket") == 3 * BT and served(res, 2, "hbm") == 0
    assert list(res.events.kind) == ["replica_restart"]


def test_reset_bucket_empties_the_persistent_level():
    trace = make_trace([(0, 0, *PROMPT), (30, 0, *PROMPT)])
    res = simulate_levels(trace, Hierarchy(THREE),
                          events=[Event(10, "replica_restart"), Event(20, "reset")])
    assert used_at(res, "bucket", 20) == 0
    assert res.records.loc[1, "hit_tokens"] == 0


def test_template_change_leaves_stale_bytes_until_reset():
    trace = make_trace([(0, 0, [1, 2, 3], [SYS, SYS, USER]), (0, 0, [7], [USER]),
                        (20, 0, [1, 2, 3], [SYS, SYS, USER]), (20, 0, [7], [USER])])
    res = simulate_levels(trace, Hierarchy(THREE),
                          events=[Event(10, "template_change", {"component": "system"}),
                                  Event(15, "replica_restart"), Event(30, "reset")])
    # the system blocks and what follows them are stale everywhere; block 7 (no system) is not
    assert res.timeline[(res.timeline.time_s == 10) & (res.timeline.level == "bucket")
                        ].stale_bytes.iloc[0] == 3 * bb()
    assert res.records.loc[2, "hit_tokens"] == 0          # new system version: recomputed
    assert res.records.loc[3, "hit_tokens"] == BT         # unrelated prompt still hits
    end = res.timeline[res.timeline.level == "bucket"]
    assert end[end.time_s == 20].stale_bytes.iloc[-1] == 3 * bb()
    assert end[end.time_s == 30].stale_bytes.iloc[-1] == 0


def test_template_change_from_trace_meta_events():
    meta = {"events": [{"time_s": 10.0, "kind": "template_change", "component": "system",
                        "version": 1}]}
    trace = make_trace([(0, 0, *PROMPT), (20, 0, *PROMPT)], meta=meta)
    res = simulate_levels(trace, Hierarchy(THREE))
    assert res.records.loc[1, "hit_tokens"] == 0
    ignored = simulate_levels(trace, Hierarchy(THREE), use_trace_events=False)
    assert ignored.records.loc[1, "hit_tokens"] == 3 * BT


def test_tier_upgrade_keeps_entries_and_gains_room():
    reqs = [(float(i), 0, [10 * i + k for k in range(4)], [USER] * 4) for i in range(6)]
    reqs += [(100.0 + i, 0, [10 * i + k for k in range(4)], [USER] * 4) for i in range(6)]
    trace = make_trace(reqs)
    small = (StorageLevel("bucket", 8 * bb(), BT, 1e9, 1e9, persistent=True),)
    before = simulate_levels(trace, Hierarchy(small))
    up = simulate_levels(trace, Hierarchy(small),
                         events=[Event(3.5, "tier_upgrade", {"capacity_bytes": 100 * bb()})])
    t = up.timeline[up.timeline.level == "bucket"]
    assert t[t.time_s == 3.5].used_bytes.iloc[0] == 8 * bb()   # nothing lost at the upgrade
    assert t[t.time_s == 3.5].capacity_bytes.iloc[0] == 100 * bb()
    assert up.summary["hit_tokens"] > before.summary["hit_tokens"]


def test_model_upgrade_invalidates_only_that_model():
    trace = make_trace([(0, 0, [1, 2], [USER] * 2), (0, 1, [1, 2], [USER] * 2),
                        (20, 0, [1, 2], [USER] * 2), (20, 1, [1, 2], [USER] * 2)])
    res = simulate_levels(trace, Hierarchy(THREE), events=[Event(10, "model_upgrade", {"model": A})])
    at = res.bytes_by_model[(res.bytes_by_model.time_s == 10) & (res.bytes_by_model.level == "bucket")]
    assert dict(zip(at.model, at.bytes, strict=True)) == {A: 0, B: 2 * bb(B)}
    assert res.records.loc[2, "hit_tokens"] == 0 and res.records.loc[3, "hit_tokens"] == 2 * BT


def test_per_model_quota_in_one_bucket():
    reqs = [(float(i), i % 2, [100 * i + k for k in range(3)], [USER] * 3) for i in range(20)]
    trace = make_trace(reqs)
    bucket = StorageLevel("bucket", 10**12, BT, 1e9, 1e9, persistent=True,
                          quotas_bytes=((A, 4 * bb(A)),))
    res = simulate_levels(trace, Hierarchy((bucket,)), sample_interval_s=0.5)
    a = res.bytes_by_model[res.bytes_by_model.model == A]
    b = res.bytes_by_model[res.bytes_by_model.model == B]
    assert a.bytes.max() <= 4 * bb(A) and b.bytes.max() == 30 * bb(B)
    late = simulate_levels(trace, Hierarchy((bucket,)),
                           events=[Event(9.5, "quota", {"model": B, "capacity_bytes": 2 * bb(B)})])
    assert late.bytes_by_model[(late.bytes_by_model.model == B)
                               & (late.bytes_by_model.time_s == 9.5)].bytes.iloc[0] <= 2 * bb(B)


def test_storage_view_frames():
    reqs = [(float(i), i % 2, [1, 2, 50 + i], [SYS, DOC, USER]) for i in range(10)]
    res = simulate_levels(make_trace(reqs), Hierarchy(THREE), sample_interval_s=1.0)
    tl = res.timeline
    assert {"time_s", "level", "used_bytes", "capacity_bytes", "utilization", "stale_bytes"} <= set(tl)
    for sample in (3, tl["sample"].max()):
        per_level = res.bytes_by_model[res.bytes_by_model["sample"] == sample].groupby("level").bytes.sum()
        for name, used in tl[tl["sample"] == sample].groupby("level").used_bytes.last().items():
            assert per_level.get(name, 0) == used
    comp = res.components.set_index("component")
    assert set(comp.index) == {"system", "document", "user"}
    # system and document blocks repeat per model after the first request of each model
    assert comp.loc["system", "hit_ratio"] == pytest.approx(8 / 10)
    assert comp.loc["user", "hit_ratio"] == 0.0


@pytest.mark.parametrize("text, match", [
    ("1h:explode", "unknown lifecycle event"),
    ("soon:reset", "not a duration"),
    ("1h:tier_upgrade", "needs capacity_bytes"),
    ("1h:template_change:component=footer", "unknown component"),
    ("1h:reset:colour=red", "does not take colour"),
    ("reset", "TIME:KIND"),
])
def test_bad_events(text, match):
    with pytest.raises(InputError, match=match):
        parse_event(text)


def test_event_parsing():
    e = parse_event("1h:tier_upgrade:level=bucket,capacity=2TB")
    assert e == Event(3600.0, "tier_upgrade", {"level": "bucket", "capacity_bytes": 2 * 10**12})
    assert event_from_dict({"time_s": 0, "kind": "reset"}).kind == "reset"
    with pytest.raises(InputError, match="unknown level"):
        simulate_levels(make_trace([(0, 0, *PROMPT)]), Hierarchy(THREE),
                        events=[Event(0, "reset", {"level": "tape"})])
