"""The foundation's CLI end to end, in-process (exit codes, JSON keys, one-line errors)."""

import json
import subprocess
import sys

import pytest

SUMMARY_KEYS = {"requests", "input_tokens", "block_accesses", "unique_blocks", "block_hit_ratio",
                "prefix_hit_tokens", "prefix_token_hit_ratio"}


def test_simulate_json(cli, mooncake_path):
    r = cli("simulate", "--trace", str(mooncake_path), "--capacity-blocks", "4392", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert SUMMARY_KEYS <= set(out)
    assert out["requests"] == 3993 and out["unique_blocks"] == 43924
    assert 0 < out["block_hit_ratio"] < 0.64


def test_simulate_bytes_with_model_and_ttl(cli, mooncake_path):
    r = cli("simulate", "--trace", str(mooncake_path), "--capacity", "100GiB", "--model",
            "llama-3.1-8b", "--ttl", "5m", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["capacity_bytes"] == 100 * 2**30 and out["ttl_s"] == 300.0 and out["model"] == "llama-3.1-8b"


def test_simulate_table(cli, mooncake_path):
    r = cli("simulate", "--trace", str(mooncake_path), "--capacity-blocks", "1000")
    assert r.exit_code == 0
    assert "block_hit_ratio" in r.stdout


def test_trace_stats_and_convert(cli, mooncake_path, tmp_path):
    r = cli("trace", "stats", str(mooncake_path), "--json")
    stats = json.loads(r.stdout)
    assert stats["requests"] == 3993
    assert stats["infinite_block_hit_ratio"] == pytest.approx(1 - 43924 / 121877)
    pq = tmp_path / "m.parquet"
    assert cli("trace", "convert", str(mooncake_path), str(pq)).exit_code == 0
    back = tmp_path / "m.jsonl"
    assert cli("trace", "convert", str(pq), str(back)).exit_code == 0
    assert back.read_bytes() == mooncake_path.read_bytes()
    # refuses to overwrite
    before = back.read_bytes()
    r = cli("trace", "convert", str(pq), str(back))
    assert r.exit_code == 2 and "refusing to overwrite" in r.stderr
    assert back.read_bytes() == before


def test_models_cli(cli):
    r = cli("models", "show", "llama-3.1-8b", "--json")
    info = json.loads(r.stdout)
    assert info["kv_bytes_per_token"] == 131072 and info["tokens_per_gib"] == 8192
    assert cli("models", "list").exit_code == 0


@pytest.mark.parametrize("args,needle", [
    (["simulate", "--trace", "MOONCAKE", "--capacity", "ten", "--model", "llama-3.1-8b"], "--capacity: not a size"),
    (["simulate", "--trace", "MOONCAKE", "--capacity", "10GB"], "give --model"),
    (["simulate", "--trace", "MOONCAKE", "--capacity-blocks", "5", "--policy", "mru"], "unknown policy 'mru'"),
    (["simulate", "--trace", "MOONCAKE", "--capacity-blocks", "5", "--ttl", "soon"], "--ttl: not a duration"),
    (["simulate", "--trace", "MOONCAKE", "--capacity", "1GB", "--model", "gpt-9"], "unknown model 'gpt-9'"),
    (["simulate", "--trace", "missing.jsonl", "--capacity-blocks", "5"], "missing.jsonl: trace file not found"),
    (["simulate", "--trace", "MOONCAKE"], "give a cache size"),
    (["trace", "stats", "MOONCAKE", "--format", "csv"], "unknown trace format 'csv'"),
])
def test_bad_input_one_line_exit_2(cli, mooncake_path, args, needle):
    args = [str(mooncake_path) if a == "MOONCAKE" else a for a in args]
    r = cli(*args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_console_script_subprocess(mooncake_path):
    """The installed entry point: a real process, real exit code, no traceback."""
    p = subprocess.run([sys.executable, "-m", "simkv", "simulate", "--trace", str(mooncake_path),
                        "--capacity-blocks", "x"], capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1
