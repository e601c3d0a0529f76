"""The economics commands through the CLI: the brief's figures, bad input, compare, recommend."""

from __future__ import annotations

import csv
import io
import json

import pytest


def test_cost_case_brief_figures(cli):
    r = cli("cost", "case", "--prefix-tokens", "32000", "--per-day", "2000", "--usd-per-mtok", "0.15")
    assert r.exit_code == 0, r.stderr
    assert "Monthly recompute: $288.00" in r.stdout
    r = cli("cost", "case", "--prefix-tokens", "24000", "--per-day", "150000", "--usd-per-mtok",
            "0.15", "--days-per-month", "30", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["monthly_recompute_usd"] == pytest.approx(16_200.0)
    assert out["kv_bytes"] == 24_000 * 131_072  # llama-3.1-8b by default
    # by hand: 3,145,728,000 B = 2.9296875 GiB read 4,500,000 times at $0.0006/GiB = $7,910.16;
    # storage 2.9296875 x $0.11 = $0.32; 94 objects of 256 tokens per read: 423,000,000 GETs x
    # $0.00003/1000 = $12.69 (+ 94 PUTs, $0.0001); one upload 2.9296875 x $0.0032 = $0.0094
    assert out["monthly_store_and_read_usd"] == pytest.approx(
        7910.15625 + 0.322265625 + 12.69 + 94 * 0.00113 / 1000 + 0.009375)
    assert out["recompute_to_store_and_read_ratio"] == pytest.approx(16_200.0 / 7923.178)
    r = cli("cost", "case", "--prefix-tokens", "24000", "--per-day", "150000", "--usd-per-mtok",
            "0.15")
    assert "$16,200.00" in r.stdout
    assert "read $7,910.16" in r.stdout and "Recompute / (store and read): 2.0x" in r.stdout


def test_cost_case_placeholder_is_said(cli):
    r = cli("cost", "case", "--prefix-tokens", "32000", "--per-day", "2000", "--usd-per-mtok",
            "0.15", "--pricebook", "bucket", "--model", "qwen3-8b")
    assert r.exit_code == 0, r.stderr
    assert "PLACEHOLDER" in r.stdout and "bucket:" in r.stdout


@pytest.mark.parametrize("text", [
    "kind: per_token\ninput_usd_per_mtok: -0.5\n",
    "kind: subscription\nrecompute_usd_per_mtok: 1\ntiers: [{name: a, usd_per_month: 1}]\n",
    "kind: prepaid\n",
])
def test_bad_pricebook_dir_one_line_exit_2(cli, tmp_path, text):
    (tmp_path / "bad.yaml").write_text(text)
    r = cli("cost", "case", "--prefix-tokens", "10", "--per-day", "1", "--usd-per-mtok", "1",
            "--pricebooks", str(tmp_path))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("simkv: error:") and "bad.yaml" in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_missing_model_exit_2(cli, mooncake_path):
    r = cli("cost", "case", "--prefix-tokens", "10", "--per-day", "1", "--usd-per-mtok", "1",
            "--model", "no-such-model")
    assert r.exit_code == 2 and "unknown model" in r.stderr
    r = cli("compare", "--trace", str(mooncake_path), "--only", "api-no-cache", "--json")
    assert r.exit_code == 2 and "--model" in r.stderr


def test_compare_on_mooncake(cli, mooncake_path):
    r = cli("compare", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--only",
            "openai,deepseek,api-no-cache,bucket,self-hosted", "--bootstrap", "30", "--json")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    by = {x["provider"]: x for x in rows}
    assert {"openai:in-memory", "openai:24h", "deepseek", "api-no-cache", "bucket:gold",
            "self-hosted:fleet", "self-hosted:marginal-gpu-seconds"} <= set(by)
    assert all(x["available"] for x in rows)
    for x in rows:
        lo, hi = x["ci95"]["total_usd"]
        assert lo <= x["total_usd"] <= hi or x["kind"] == "per_token"
    assert by["api-no-cache"]["savings_usd"] == 0
    # Mooncake's synthetic trace reuses prefixes (paper: 66% cache ratio): caching saves money
    assert by["deepseek"]["savings_usd"] > 0 and by["openai:24h"]["hit_rate"] > 0.5
    # a fleet is whole replicas of $2.95/GPU-hour for 24 h x 30 days: $2,124 each
    fleet = by["self-hosted:fleet"]
    assert fleet["total_usd"] == pytest.approx(fleet["replicas_with_cache"] * 2124.0)
    assert fleet["no_cache_usd"] == pytest.approx(fleet["replicas_without_cache"] * 2124.0)
    assert fleet["replicas_with_cache"] < fleet["replicas_without_cache"]  # the cache saves GPUs
    assert fleet["ttft_slo_p90_s"] == 2.0 and fleet["sizing"] == "busiest_hour"
    assert by["bucket:gold"]["placeholder"] is True and by["bucket:gold"]["status"] == "placeholder"
    assert by["api-no-cache"]["status"] == "published" and by["deepseek"]["status"] == "derived"


def test_compare_csv_and_chunk_refusal(cli, mooncake_path):
    r = cli("compare", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--only",
            "deepseek", "--bootstrap", "0", "--csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0]["provider"] == "deepseek" and float(rows[0]["total_usd"]) > 0
    r = cli("compare", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--reuse", "both")
    assert r.exit_code == 2 and "content hashes" in r.stderr


def _write_mooncake(path, n=40):
    lines = []
    for i in range(n):
        group = i % 3
        ids = [group * 10 + j for j in range(2)]
        lines.append(json.dumps({"timestamp": i * 1000, "input_length": 1024, "output_length": 4,
                                 "hash_ids": ids}))
    path.write_text("\n".join(lines) + "\n")


def test_recommend_on_a_small_trace(cli, tmp_path):
    trace = tmp_path / "small.jsonl"
    _write_mooncake(trace)
    block = 131072 * 512  # 3 prefixes x 2 blocks cycle: 6 blocks; x2 growth 12, x5 growth 30
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text(
        "kind: subscription\nrecompute_usd_per_mtok: 0.15\ntiers:\n"
        "  - {name: zero, capacity: 0, usd_per_month: 0}\n"
        f"  - {{name: four, capacity: {4 * block}, usd_per_month: 1}}\n"
        f"  - {{name: six, capacity: {6 * block}, usd_per_month: 2}}\n"
        f"  - {{name: many, capacity: {20 * block}, usd_per_month: 3}}\n")
    r = cli("recommend", "--trace", str(trace), "--model", "llama-3.1-8b", "--tiers", str(tiers),
            "--growth", "2,5", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["recommended_tier"] == "six"
    assert [g["recommended_tier"] for g in out["growth"]] == ["many", None]
    r = cli("recommend", "--trace", str(trace), "--model", "llama-3.1-8b", "--tiers", str(tiers),
            "--ttft-slo-p90-s", "0.5")
    assert r.exit_code == 0, r.stderr
    assert "Largest net savings: six" in r.stdout and "Runner-up: many" in r.stdout
    assert "TTFT p90 <= 0.5 s on H100: six needs" in r.stdout
    r = cli("recommend", "--trace", str(trace), "--model", "llama-3.1-8b", "--growth", "1.5")
    assert r.exit_code == 2 and "whole numbers" in r.stderr


def test_compare_fleet_options(cli, mooncake_path):
    base = ("compare", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--only",
            "self-hosted", "--bootstrap", "0")
    r = cli(*base, "--fleet-sizing", "per_hour", "--json")
    assert r.exit_code == 0, r.stderr
    fleet = {x["provider"]: x for x in json.loads(r.stdout)}["self-hosted:fleet"]
    # the trace is 17 minutes long: one (partial) hour, so autoscaling pays its own count
    assert fleet["sizing"] == "per_hour" and len(fleet["fleet_hours"]) == 1
    for bad, where in (("--fleet-sizing", "--fleet-sizing"), ("--ttft-slo-p90-s", "--ttft-slo")):
        r = cli(*base, bad, "-1")
        assert r.exit_code == 2 and where in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_compare_and_recommend_show_progress_on_a_pipe(cli, mooncake_path):
    """On a pipe, each cache run and each pricing pass over the blocks writes a few progress
    lines to stderr (a rich bar on a terminal), named after its book; stdout stays the JSON."""
    r = cli("compare", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--only",
            "deepseek,api-no-cache", "--bootstrap", "0", "--json")
    assert r.exit_code == 0, r.stderr
    assert len(json.loads(r.stdout)) == 2  # deepseek (prefix units: a block pass), no cache
    lines = r.stderr.strip().splitlines()
    assert any(ln.startswith("compare deepseek: cache run: ") and ln.endswith("(100%) requests")
               for ln in lines), lines
    assert any(ln.startswith("compare deepseek: pricing deepseek: ") for ln in lines), lines
    r = cli("recommend", "--trace", str(mooncake_path), "--model", "llama-3.1-8b", "--growth",
            "2", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["growth"][0]["factor"] == 2
    assert any(ln.startswith("recommend bucket at 2x traffic: cache run: ")
               for ln in r.stderr.splitlines()), r.stderr
