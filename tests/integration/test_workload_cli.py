"""``simkv workload generate|list`` and ``simkv trace import`` end to end (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from simkv.trace import load_trace

SPEC = {
    "name": "cli-test", "duration": "1h", "seed": 4, "block_tokens": 128,
    "arrivals": {"rate_per_day": 4000},
    "sessions": {"turns": {"dist": "geometric", "mean": 2}},
    "system": {"templates": 2, "tokens": 700, "change_at": ["30m"]},
    "user": {"tokens": 50}, "output": {"tokens": 80},
    "models": [{"name": "qwen3-32b"}],
}


@pytest.fixture
def spec_file(tmp_path) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def test_list_shows_the_examples(cli):
    r = cli("workload", "list", "--json")
    assert r.exit_code == 0, r.stderr
    items = {w["name"]: w for w in json.loads(r.stdout)}
    for name in ("brief-system-prefix", "support-assistant", "agent-loop", "rag-zipf",
                 "multi-tenant-mix", "prompt-evolution"):
        assert items[name]["description"] and Path(items[name]["path"]).is_file()
    r = cli("workload", "list")
    assert r.exit_code == 0 and "support-assistant" in r.stdout


def test_generate_writes_a_trace_with_meta(cli, spec_file, tmp_path):
    out = tmp_path / "t.parquet"
    r = cli("workload", "generate", str(spec_file), "--out", str(out), "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    t = load_trace(out)
    assert summary["requests"] == t.n_requests > 0 and summary["block_tokens"] == 128
    assert t.meta["spec_name"] == "cli-test" and t.meta["seed"] == 4
    assert t.meta["events"][0]["kind"] == "template_change"


def test_window_seed_and_block_size_overrides(cli, spec_file, tmp_path):
    outs = {}
    for name, args in {"h": ["--hours", "0.5"], "d": ["--duration", "30m"],
                       "days": ["--days", str(0.5 / 24)]}.items():
        outs[name] = tmp_path / f"{name}.parquet"
        r = cli("workload", "generate", str(spec_file), "--out", str(outs[name]), *args)
        assert r.exit_code == 0, r.stderr
    assert outs["h"].read_bytes() == outs["d"].read_bytes() == outs["days"].read_bytes()
    t = load_trace(outs["h"])
    assert t.arrival_s[-1] < 1800 and t.meta["window_s"] == 1800
    other = tmp_path / "s.parquet"
    assert cli("workload", "generate", str(spec_file), "--out", str(other), "--hours", "0.5",
               "--seed", "99", "--block-tokens", "256").exit_code == 0
    t2 = load_trace(other)
    assert t2.meta["seed"] == 99 and t2.block_tokens == 256


def test_generate_by_example_name(cli, tmp_path):
    out = tmp_path / "b.parquet"
    r = cli("workload", "generate", "brief-system-prefix", "--out", str(out), "--hours", "2")
    assert r.exit_code == 0, r.stderr
    t = load_trace(out)
    assert t.meta["spec_name"] == "brief-system-prefix"
    assert all(n >= 32000 for n in t.input_tokens)


def test_refuses_to_overwrite_without_force(cli, spec_file, tmp_path):
    out = tmp_path / "t.parquet"
    out.write_bytes(b"precious")
    r = cli("workload", "generate", str(spec_file), "--out", str(out))
    assert r.exit_code == 2 and "refusing to overwrite" in r.stderr
    assert out.read_bytes() == b"precious"
    assert cli("workload", "generate", str(spec_file), "--out", str(out), "--force").exit_code == 0
    assert load_trace(out).n_requests > 0


@pytest.mark.parametrize("args,message", [
    (["--hours", "1", "--days", "1"], "at most one of"),
    (["--hours", "-1"], "--hours: must be > 0"),
    (["--duration", "soon"], "not a duration"),
    (["--seed", "-3"], "--seed"),
    (["--block-tokens", "0"], "--block-tokens: must be > 0"),
])
def test_bad_options_exit_2_and_write_nothing(cli, spec_file, tmp_path, args, message):
    out = tmp_path / "t.parquet"
    r = cli("workload", "generate", str(spec_file), "--out", str(out), *args)
    assert r.exit_code == 2 and message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and not out.exists()
    assert list(tmp_path.iterdir()) == [spec_file]


def test_bad_spec_exit_2_names_file_and_field(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "arrivals": {"rate_per_day": -1}}))
    out = tmp_path / "t.parquet"
    r = cli("workload", "generate", str(bad), "--out", str(out))
    assert r.exit_code == 2
    assert r.stderr == f"simkv: error: {bad}: field arrivals.rate_per_day: must be > 0\n"
    assert not out.exists()
    r = cli("workload", "generate", "no-such-example", "--out", str(out))
    assert r.exit_code == 2 and "no such workload" in r.stderr


def test_trace_import_alibaba_and_openai_log(cli, tmp_path):
    ali = tmp_path / "ali.jsonl"
    ali.write_text(json.dumps({"chat_id": 1, "parent_chat_id": -1, "timestamp": 0.5,
                               "input_length": 20, "output_length": 3, "type": "text",
                               "turn": 1, "hash_ids": [5, 6]}) + "\n")
    out = tmp_path / "ali.parquet"
    r = cli("trace", "import", "--format", "alibaba", str(ali), str(out))
    assert r.exit_code == 0, r.stderr
    assert load_trace(out).blocks(0).tolist() == [5, 6]
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"timestamp": 3, "model": "qwen3-32b", "prompt": "hello " * 50})
                   + "\n")
    out2 = tmp_path / "log.parquet"
    r = cli("trace", "import", "--format", "openai-log", str(log), str(out2), "--block-tokens", "32")
    assert r.exit_code == 0, r.stderr
    t = load_trace(out2)
    assert t.block_tokens == 32 and t.content_hashes is not None


def test_trace_import_bad_input_writes_nothing(cli, tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"timestamp": 1, "model": "m", "prompt": "ok"}\n{"timestamp": 2,\n')
    out = tmp_path / "o.parquet"
    r = cli("trace", "import", "--format", "openai-log", str(log), str(out))
    assert r.exit_code == 2 and f"{log}: line 2: malformed JSON" in r.stderr
    assert not out.exists()
    r = cli("trace", "import", "--format", "alibaba", str(log), str(out), "--tokenizer", "x.json")
    assert r.exit_code == 2 and "--tokenizer applies only" in r.stderr
    r = cli("trace", "import", "--format", "nope", str(log), str(out))
    assert r.exit_code == 2 and "unknown trace format 'nope'" in r.stderr
    out.write_text("keep")
    r = cli("trace", "import", "--format", "openai-log", str(log), str(out))
    assert r.exit_code == 2 and out.read_text() == "keep"
