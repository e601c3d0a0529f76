"""The workload generator: engine-like hash chains, content hashes, templates, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simkv.hashing import POLY
from simkv.trace.model import TAG_CODES
from simkv.workloads import generate, load_spec, spec_from_dict
from simkv.workloads import generator as g

MASK = (1 << 64) - 1


def base(**over) -> dict:
    spec = {
        "name": "unit", "duration": "2h", "seed": 11, "block_tokens": 64,
        "arrivals": {"rate_per_day": 6000},
        "sessions": {"turns": {"dist": "geometric", "mean": 2.5},
                     "think_time_s": {"dist": "exponential", "mean": 120}},
        "system": {"templates": 3, "zipf": 1.0, "tokens": {"dist": "uniform", "low": 300, "high": 900}},
        "tools": {"templates": 2, "tokens": 500, "probability": 0.5},
        "documents": {"corpus": 50, "zipf": 1.0, "tokens": {"dist": "choice", "values": [128, 256]},
                      "per_request": 2, "probability": 0.5},
        "user": {"tokens": {"dist": "lognormal", "median": 40, "sigma": 0.8}},
        "output": {"tokens": {"dist": "lognormal", "median": 80, "sigma": 0.5}},
        "models": [{"name": "qwen3-32b", "weight": 2}, {"name": "llama-3.1-8b"}],
    }
    for key, value in over.items():
        spec[key] = value
    return spec


def gen(**over):
    return generate(spec_from_dict(base(**over)))


# ---------------------------------------------------------------- a slow reference of the hashes
def mix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def reference_blocks(ids, lens, tags, salt, B, unit):
    """Chained hash, content hash and first-token tag per block, token by token."""
    owner, offset = [], []
    for k, n in enumerate(lens):
        owner += [k] * int(n)
        offset += list(range(int(n)))
    n = len(owner)
    out = []
    for a in range(0, n, B):
        e = min(a + B, n)
        # chain: complete segments before the one holding token e-1, then the partial one
        k_end = owner[e - 1]
        state = salt
        for k in range(k_end):
            state = mix64(mix64(state ^ int(ids[k])) ^ int(lens[k]))
        h = mix64(mix64(state ^ int(ids[k_end])) ^ (offset[e - 1] + 1))
        c = 0
        for u in range(a, e, unit):
            ue = min(u + unit, e)
            st, t = salt, u
            while t < ue:  # maximal runs of one segment inside the unit
                k, lo = owner[t], offset[t]
                t2 = t
                while t2 < ue and owner[t2] == k:
                    t2 += 1
                st = mix64(mix64(st ^ int(ids[k])) ^ ((lo << 32) | (lo + t2 - t)))
                t = t2
            c = (c * int(POLY) + st) & MASK
        out.append((h, c, int(tags[owner[a]])))
    return out


@pytest.mark.parametrize("block_tokens", [16, 64, 100, 256])
def test_numba_hashes_match_token_by_token_reference(block_tokens):
    spec = replace(spec_from_dict(base(duration="20m")), block_tokens=block_tokens)
    p = g.plan(spec)
    reqs = g.run_sessions(p)
    seg = g.segments(p, reqs)
    trace = g.assemble(p, reqs)
    unit = trace.meta["content_hash_unit_tokens"]
    assert unit == (16 if block_tokens % 16 == 0 else 4)
    for r in range(0, trace.n_requests, max(1, trace.n_requests // 12)):
        sl = slice(seg.offsets[r], seg.offsets[r + 1])
        ref = reference_blocks(seg.ids[sl], seg.lengths[sl], seg.tags[sl], int(seg.salts[r]),
                               block_tokens, unit)
        blocks = slice(trace.block_offsets[r], trace.block_offsets[r + 1])
        assert [x[0] for x in ref] == trace.block_hashes[blocks].tolist()
        assert [x[1] for x in ref] == trace.content_hashes[blocks].tolist()
        assert [x[2] for x in ref] == trace.block_tags[blocks].tolist()
        assert trace.input_tokens[r] == int(seg.lengths[sl].sum())


# ---------------------------------------------------------------- structure
def test_trace_shape_ids_and_meta():
    t = gen()
    assert t.n_requests > 100
    assert np.all(np.diff(t.arrival_s) >= 0) and t.arrival_s[-1] < 7200
    assert t.models == ("qwen3-32b", "llama-3.1-8b")
    assert set(np.unique(t.model_index)) == {0, 1}
    assert t.block_tags is not None and t.content_hashes is not None
    assert t.meta["spec_name"] == "unit" and t.meta["seed"] == 11
    assert len(t.meta["spec_digest"]) == 16 and t.meta["events"] == []
    # sessions numbered in arrival order of their first request
    first = np.unique(t.session_ids, return_index=True)[1]
    assert np.all(np.diff(t.session_ids[np.sort(first)]) > 0)
    # every request ends with its own user message
    last = t.block_offsets[1:] - 1
    assert np.all(t.block_tags[last] == TAG_CODES["user"]) or t.block_tokens > 40


def test_session_count_follows_the_rate_and_diurnal_profile():
    diurnal = [0.0] * 12 + [1.0] * 12
    t = generate(spec_from_dict(base(duration="1d", arrivals={"rate_per_day": 4800,
                                                                "diurnal": diurnal},
                                     sessions={"turns": 1})))
    n = t.n_requests
    assert abs(n - 4800) < 5 * np.sqrt(4800)
    assert t.arrival_s.min() >= 12 * 3600  # zero weight in the first 12 hours


def test_bursts_multiply_the_rate():
    t = generate(spec_from_dict(base(duration="4h", sessions={"turns": 1}, arrivals={
        "rate_per_day": 24 * 600, "bursts": [{"at": "1h", "duration": "1h", "multiplier": 5}]})))
    hours = np.bincount((t.arrival_s // 3600).astype(int), minlength=4)
    assert hours[1] > 3 * max(hours[0], hours[2], hours[3])


def test_shorter_window_is_a_prefix_of_a_longer_one():
    long = gen(duration="2h")
    short = gen(duration="1h")
    rows = np.flatnonzero(long.arrival_s < 3600)
    assert long.select(rows).equals(short)


def test_same_seed_same_trace_other_seed_differs():
    assert gen().equals(gen())
    assert not gen(seed=12).equals(gen())


def test_token_counts_do_not_depend_on_block_size():
    a, b = gen(block_tokens=16), gen(block_tokens=256)
    assert np.array_equal(a.input_tokens, b.input_tokens)
    assert np.array_equal(a.arrival_s, b.arrival_s)


# ---------------------------------------------------------------- hash chains like an engine
def test_shared_system_prompt_gives_identical_leading_hashes_and_tenant_salt_separates():
    spec = base(system={"templates": 1, "tokens": 640}, tools=None, documents=None,
                models=[{"name": "qwen3-32b"}], tenants={"count": 2})
    shared = generate(spec_from_dict(spec))
    lead = np.stack([shared.blocks(i)[:10] for i in range(shared.n_requests)])  # 640/64 blocks
    assert np.all(lead == lead[0])
    assert np.all(shared.block_tags[shared.block_offsets[0]:][:10] == TAG_CODES["system"])
    spec["tenants"] = {"count": 2, "isolated": True}
    iso = generate(spec_from_dict(spec))
    by_tenant = {int(iso.tenant_ids[i]): iso.blocks(i)[:10] for i in range(iso.n_requests)}
    assert set(by_tenant) == {0, 1}
    assert not np.any(np.isin(by_tenant[0], by_tenant[1]))
    for i in range(iso.n_requests):
        assert np.array_equal(iso.blocks(i)[:10], by_tenant[int(iso.tenant_ids[i])])


def test_different_models_never_share_hashes():
    t = gen(system={"templates": 1, "tokens": 640}, tools=None, documents=None)
    a = t.blocks(int(np.flatnonzero(t.model_index == 0)[0]))[:10]
    b = t.blocks(int(np.flatnonzero(t.model_index == 1)[0]))[:10]
    assert not np.any(np.isin(a, b))


def test_full_history_extends_the_previous_turn_and_window_does_not():
    t = gen(documents=None, tools=None)
    checked = 0
    for i in range(t.n_requests):
        s = t.session_ids[i]
        later = np.flatnonzero(t.session_ids == s)
        later = later[later > i]
        if len(later) == 0:
            continue
        prev, nxt = t.blocks(i), t.blocks(int(later[0]))
        full = len(prev) - 1  # the final block of the previous prompt is partial (or ends there)
        assert np.array_equal(prev[:full], nxt[:full])
        checked += 1
    assert checked > 20
    w = gen(documents=None, tools=None, system={"templates": 1, "tokens": 256},
            history={"mode": "window", "window_turns": 1},
            sessions={"turns": 4, "think_time_s": 10})
    sess = w.session_ids == w.session_ids[0]
    rows = np.flatnonzero(sess)
    third, fourth = w.blocks(int(rows[2])), w.blocks(int(rows[3]))
    assert np.array_equal(third[:4], fourth[:4])  # the 256-token system prompt
    assert third[5] != fourth[5]  # the window slid: history differs right after it


def test_documents_after_different_prefixes_share_content_not_chained_hashes():
    spec = base(system={"templates": 2, "zipf": 0.5, "tokens": 512}, tools=None,
                documents={"corpus": 1, "tokens": 512, "per_request": 1},
                sessions={"turns": 1}, models=[{"name": "qwen3-32b"}], block_tokens=128)
    t = generate(spec_from_dict(spec))
    doc = TAG_CODES["document"]
    firsts = {}
    for i in range(t.n_requests):
        blocks = slice(t.block_offsets[i], t.block_offsets[i + 1])
        system_hash = int(t.block_hashes[blocks][0])
        tags = t.block_tags[blocks]
        assert np.count_nonzero(tags == doc) == 4
        firsts.setdefault(system_hash, (t.block_hashes[blocks][tags == doc],
                                        t.content_hashes[blocks][tags == doc]))
    assert len(firsts) == 2
    (h1, c1), (h2, c2) = firsts.values()
    assert np.array_equal(c1, c2)  # same document content, block-aligned
    assert not np.any(np.isin(h1, h2))  # but after different prefixes


def test_template_change_gives_new_hashes_after_the_change_time():
    t = gen(system={"templates": 1, "tokens": 640, "change_at": ["1h"]}, tools=None,
            models=[{"name": "qwen3-32b"}])
    assert t.meta["events"] == [{"time_s": 3600.0, "kind": "template_change",
                                 "component": "system", "version": 1}]
    first = np.array([int(t.blocks(i)[0]) for i in range(t.n_requests)])
    before, after = first[t.arrival_s < 3600], first[t.arrival_s >= 3600]
    assert len(set(before)) == 1 and len(set(after)) == 1 and before[0] != after[0]


def test_change_every_and_resets_become_events():
    t = gen(duration="7h", system={"templates": 2, "tokens": 300, "change_every": "3h"},
            tools={"templates": 1, "tokens": 100, "change_at": ["90m"]}, resets=["5h", "8h"])
    kinds = [(e["time_s"], e["kind"], e.get("component"), e.get("version"))
             for e in t.meta["events"]]
    assert kinds == [(5400.0, "template_change", "tools", 1),
                     (10800.0, "template_change", "system", 1),
                     (18000.0, "reset", None, None),
                     (21600.0, "template_change", "system", 2)]


def test_example_workload_one_hour_generates(tmp_path):
    root = Path(__file__).resolve().parents[2]
    spec = load_spec(root / "workloads" / "rag-zipf.yaml")
    t = generate(spec, window_s=900.0)
    assert t.n_requests > 0 and t.block_tokens == 256


# ---------------------------------------------------------------- determinism across processes
@pytest.mark.slow  # two interpreter start-ups (~5 s each on a busy machine)
def test_byte_identical_parquet_in_two_fresh_processes(tmp_path):
    spec = tmp_path / "w.yaml"
    import yaml

    spec.write_text(yaml.safe_dump(base(duration="30m")))
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[2] / ".cache" / "numba"))
    outs = [tmp_path / f"t{i}.parquet" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "simkv", "workload", "generate", str(spec),
                               "--out", str(o), "--json"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for o in outs]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    a, b = (o.read_bytes() for o in outs)
    assert len(a) > 1000 and a == b
