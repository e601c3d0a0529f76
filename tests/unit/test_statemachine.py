"""The cache state machine against an OrderedDict model of the same operations.

``collections.OrderedDict`` (least recent first) is the obviously-correct twin: every random
sequence of touch / insert / drop / evict / expire / batch operations must leave the same order,
the same sizes, stamps and byte counts.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from simkv.cache.statemachine import LruTtl, SlotOrder, lru_if_expired


def test_slot_order_basic_moves():
    q = SlotOrder()
    q.fill(1, 5)                      # 1 2 3 4
    q.touch(2)                        # 1 3 4 2
    q.push_lru(7)                     # 7 1 3 4 2 (grows the arrays)
    q.remove(3)                       # 7 1 4 2
    assert list(q) == [7, 1, 4, 2] and len(q) == 4
    assert q.pop_lru() == 7 and list(q) == [1, 4, 2]
    assert 4 in q and 3 not in q


@pytest.mark.parametrize("seed", range(6))
def test_slot_order_batches_match_an_ordered_dict(seed):
    rng = np.random.default_rng(seed)
    q, ref = SlotOrder(), OrderedDict()
    q.reserve(40)
    for _ in range(400):
        op = rng.integers(0, 4)
        slots = [int(x) for x in rng.integers(1, 40, int(rng.integers(0, 6)))]
        if op == 0:                   # take out whatever is queued
            q.take_many(np.array(slots, dtype=np.int64))
            for s in slots:
                ref.pop(s, None)
        elif op == 1:                 # append to the tail, queued ones stay
            q.put_many(np.array(slots, dtype=np.int64), at_lru=False)
            for s in slots:
                ref.setdefault(s, None)
        elif op == 2:                 # prepend each in turn
            q.put_many(np.array(slots, dtype=np.int64), at_lru=True)
            for s in slots:
                ref[s] = None
                ref.move_to_end(s, last=False)
        else:                         # pop heads
            k = int(rng.integers(0, 4))
            got = q.pop_many(k).tolist()
            want = [ref.popitem(last=False)[0] for _ in range(min(k, len(ref)))]
            assert got == want
        assert list(q) == list(ref) and len(q) == len(ref)


@pytest.mark.parametrize("seed", range(6))
def test_lru_ttl_matches_an_ordered_dict(seed):
    rng = np.random.default_rng(100 + seed)
    c = LruTtl()
    ref: OrderedDict[tuple, list] = OrderedDict()   # key -> [size, group, stamp]
    t = 0.0
    for _ in range(600):
        t += float(rng.exponential(1.0))
        key = ("k", int(rng.integers(0, 30)))
        op = rng.integers(0, 6)
        if op <= 1:
            if key in ref:
                c.touch_key(key, t)
                ref.move_to_end(key)
                ref[key][2] = t
            else:
                size, group = int(rng.integers(1, 9)), int(rng.integers(0, 3))
                c.insert(key, size, group, t)
                ref[key] = [size, group, t]
        elif op == 2 and key in ref:
            if rng.integers(0, 2):
                c.drop(key)
            else:
                slot, size, group, stamp = c.drop_entry(key)
                assert (size, group, stamp) == tuple(ref[key]) and slot not in c.key_at
            del ref[key]
        elif op == 3 and ref:
            g = int(rng.integers(0, 3))
            want = next((k for k, v in ref.items() if v[1] == g), None)
            if want is not None:
                assert c.lru_key(g) == want
            assert c.lru_key() == next(iter(ref))
        elif op == 4:
            ttl = float(rng.uniform(1, 20))
            want = [k for k, v in ref.items() if t - v[2] >= ttl]
            assert c.expired_keys(t, ttl) == want
        elif op == 5:
            g = int(rng.integers(0, 3))
            assert c.keys_of_group(g) == [k for k, v in ref.items() if v[1] == g]
        assert list(c.keys()) == list(ref)
        assert c.used == sum(v[0] for v in ref.values())
        for g in range(3):
            assert c.by_group.get(g, 0) == sum(v[0] for v in ref.values() if v[1] == g)
        for k, v in ref.items():
            slot = c.slot_of[k]
            assert (int(c.size[slot]), int(c.group[slot]), float(c.stamp[slot])) == tuple(v)


def test_lru_if_expired_is_the_stamp_ordered_expiry_step():
    """Slots 1 2 3 inserted at t = 0, 5, 10 (a list in stamp order); at t = 12 with ttl 5,
    12 - 0 and 12 - 5 are >= 5 (expired, strict as the engine's TTL), 12 - 10 is not."""
    c = LruTtl()
    for key, t in (("a", 0.0), ("b", 5.0), ("c", 10.0)):
        c.insert(key, 1, 0, t)
    gone = []
    while (slot := lru_if_expired(c.nxt, c.stamp, 12.0, 5.0)) != 0:
        gone.append(c.key_at[int(slot)])
        c.drop(c.key_at[int(slot)])
    assert gone == ["a", "b"] and list(c.keys()) == ["c"]
    c.drop("c")
    assert lru_if_expired(c.nxt, c.stamp, 1e9, 0.0) == 0  # an empty list has nothing to expire
