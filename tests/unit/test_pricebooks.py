"""Price books: shipped defaults, the registry, validation errors naming file and field."""

from __future__ import annotations

import math
import re

import pytest

from simkv.economics import (
    PRICEBOOK_KINDS,
    book_from_dict,
    cost_case,
    find_book,
    load_pricebook,
    load_pricebooks,
    monthly_recompute_usd,
)
from simkv.economics.pricebook import default_pricebook_dir
from simkv.errors import InputError
from simkv.models import get_model

KINDS = {"per_token", "anthropic", "openai", "gemini", "deepseek", "subscription", "storage",
         "self_hosted"}


def test_shipped_books_are_package_data_with_source_and_date():
    files = sorted(p.name for p in default_pricebook_dir().iterdir() if p.name.endswith(".yaml"))
    assert len(files) == 8
    books = load_pricebooks()
    assert {b.kind for b in books} == KINDS == set(PRICEBOOK_KINDS.names())
    for b in books:
        assert b.source and b.as_of, b.name


def test_placeholders_are_flagged():
    books = {b.name: b for b in load_pricebooks()}
    assert books["bucket"].placeholder
    assert [t.name for t in books["bucket"].sorted_tiers()][0] == "free"
    assert books["bucket"].sorted_tiers()[0].capacity == 0
    media = dict(books["storage"].media)
    assert not media["object_store"].placeholder
    assert all(media[m].placeholder for m in ("nvme", "dram", "redis"))
    text = (default_pricebook_dir() / "subscription.yaml").read_text()
    assert "PLACEHOLDER" in text


# Every shipped figure against the value its cited page gives (read 2026-12-01; URLs in the YAMLs).
CITED = {
    # platform.claude.com/docs/en/about-claude/pricing: Opus 4.8 $5 base, $6.25 5m writes,
    # $10 1h writes, $0.50 hits; minimum 1,024 tokens (secondary page quoting the docs)
    "anthropic": {"input_usd_per_mtok": 5.0, "read_multiplier": 0.1, "min_cacheable_tokens": 1024},
    # GPT-5.5 $5.00 input, $0.50 cached input (secondary, June 2026); >= 1,024 tokens, 128 steps
    "openai": {"input_usd_per_mtok": 5.0, "read_multiplier": 0.1, "write_multiplier": None,
               "min_prefix_tokens": 1024, "increment_tokens": 128},
    # Gemini 2.5 Pro: cached $0.125/MTok = 10% of $1.25; $4.50/MTok-hour; minimum 2,048
    # (ai.google.dev/gemini-api/docs/caching, last updated 2026-10-13)
    "gemini": {"input_usd_per_mtok": 1.25, "read_fraction": 0.1, "storage_usd_per_mtok_hour": 4.5,
               "ttl_s": 3600.0, "min_cacheable_tokens": 2048},
    # DeepSeek v4-flash $0.0028 hit, $0.14 miss; cache prefix units, no 64-token floor
    "deepseek": {"hit_usd_per_mtok": 0.0028, "miss_usd_per_mtok": 0.14, "unit_tokens": None,
                 "prefix_units": True},
    "api-no-cache": {"input_usd_per_mtok": 0.15},
    # median on-demand H100, May 2026 (secondary); the default TTFT objective p90 <= 2 s
    "self-hosted": {"usd_per_gpu_hour": 2.95, "gpus_per_replica": 1, "ttft_slo_p90_s": 2.0},
    "storage": {"recompute_usd_per_mtok": 0.15},
    "bucket": {"recompute_usd_per_mtok": 0.15},
}
# aws.amazon.com/s3/faqs, S3 Express One Zone examples (US East): storage $0.11/GB-month, PUT
# $0.00113 and GET $0.00003 per 1,000, upload $0.0032/GB, retrieval $0.0006/GB
S3_EXPRESS = {"usd_per_gib_month": 0.11, "usd_per_1k_put": 0.00113, "usd_per_1k_get": 0.00003,
              "usd_per_gib_written": 0.0032, "usd_per_gib_read": 0.0006, "usd_per_gib_egress": 0.0}


def test_shipped_figures_match_cited_values():
    books = {b.name: b for b in load_pricebooks()}
    for name, figures in CITED.items():
        for field, value in figures.items():
            assert getattr(books[name], field) == value, (name, field)
    a = books["anthropic"]
    assert {o.label: (o.ttl, o.write_multiplier) for o in a.ttl_options} == {
        "5m": (300.0, 1.25), "1h": (3600.0, 2.0)}
    assert {r.label: r.idle for r in books["openai"].retention} == {"in-memory": 300.0, "24h": 86400.0}
    media = dict(books["storage"].media)
    assert {k: getattr(media["object_store"], k) for k in S3_EXPRESS} == S3_EXPRESS
    assert {m: media[m].read_gib_per_s for m in media} == {
        "object_store": 2.0, "nvme": 7.0, "dram": 64.0, "redis": 10.0}
    assert [(t.name, t.capacity, t.usd_per_month) for t in books["bucket"].sorted_tiers()] == [
        ("free", 0, 0), ("bronze", 100 * 10**9, 25), ("silver", 10**12, 150),
        ("gold", 10 * 10**12, 1000)]


def test_every_figure_has_a_url_and_a_full_date():
    books = load_pricebooks()
    for b in books:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", b.as_of), b.name
        assert b.figures, b.name
        for field, f in b.figures:
            assert f.url and re.fullmatch(r"\d{4}-\d{2}-\d{2}", f.as_of), (b.name, field)
    media = dict(next(b for b in books if b.name == "storage").media)
    for m in media.values():  # every fee a store can charge, and its bandwidth, has a source
        assert set(m.figures) == set(S3_EXPRESS) | {"read_gib_per_s"}
    with pytest.raises(InputError, match="as_of"):
        book_from_dict({"kind": "per_token", "input_usd_per_mtok": 1, "as_of": "2026"},
                       source="x.yaml", default_name="x")


def test_book_status_published_derived_placeholder():
    books = {b.name: b for b in load_pricebooks()}
    assert books["api-no-cache"].status() == "published"
    assert books["anthropic"].status() == "derived"  # minimum tokens from a secondary page
    assert books["bucket"].status() == "placeholder"
    assert books["storage"].status("object_store") == "derived"  # egress, bandwidth assumed
    assert books["storage"].status("nvme") == "placeholder"


def test_cost_case_figures_of_the_brief():
    assert monthly_recompute_usd(32_000, 2_000, 0.15) == pytest.approx(288.0)
    assert monthly_recompute_usd(24_000, 150_000, 0.15) == pytest.approx(16_200.0)
    spec = get_model("llama-3.1-8b")
    books = load_pricebooks()
    book, variant = find_book(books, "storage:object_store")
    out = cost_case(32_000, 2_000, 0.15, days_per_month=30, spec=spec, book=book, variant=variant)
    assert out["monthly_recompute_usd"] == 288.0
    assert out["kv_bytes"] == spec.kv_bytes(32_000) == 32_000 * 131_072
    # by hand: 4,194,304,000 B = 3.90625 GiB; storage 3.90625 x 0.11 = $0.4296875;
    # 60,000 reads x 3.90625 GiB x $0.0006 = $140.625 retrieval; 125 objects of 256 tokens:
    # 7,500,000 GETs x $0.00003/1000 = $0.225, 125 PUTs x $0.00113/1000 = $0.00014125,
    # one upload 3.90625 x $0.0032 = $0.0125; total $141.29233875
    comps = out["store_and_read_components_usd"]
    assert comps["storage_usd"] == pytest.approx(0.4296875)
    assert comps["read_usd"] == pytest.approx(140.625)
    assert comps["requests_usd"] == pytest.approx(0.225 + 0.00014125)
    assert comps["write_usd"] == pytest.approx(0.0125)
    assert out["monthly_storage_usd"] == pytest.approx(0.4296875)
    assert out["monthly_store_and_read_usd"] == pytest.approx(141.29233875)
    assert out["recompute_to_store_and_read_ratio"] == pytest.approx(288.0 / 141.29233875)
    assert out["read_load_s"] == pytest.approx(3.90625 / 2.0)
    book, _ = find_book(books, "gemini")
    out = cost_case(32_000, 2_000, 0.15, days_per_month=30, spec=spec, book=book)
    # storage 0.032 MTok x $4.50 x 24 x 30 = $103.68; reads 32,000 x 60,000 / 1e6 x $0.125 = $240
    assert out["monthly_storage_usd"] == pytest.approx(103.68)
    assert out["monthly_store_and_read_usd"] == pytest.approx(343.68)
    book, _ = find_book(books, "bucket")
    out = cost_case(32_000, 2_000, 0.15, days_per_month=30, spec=spec, book=book)
    assert out["pricebook"] == "bucket:bronze" and out["placeholder"]
    assert out["monthly_store_and_read_usd"] == 25.0 and out["pricebook_status"] == "placeholder"
    with pytest.raises(InputError, match="no storage charge"):
        cost_case(32_000, 2_000, 0.15, days_per_month=30, spec=spec,
                  book=find_book(books, "openai")[0])


def test_subscription_quote_beyond_largest_tier():
    spec = get_model("llama-3.1-70b")
    book = book_from_dict({"kind": "subscription", "recompute_usd_per_mtok": 1,
                           "tiers": [{"name": "t", "capacity": "1GB", "usd_per_month": 5}]},
                          source="x.yaml", default_name="x")
    out = cost_case(32_000, 10, 1.0, days_per_month=30, spec=spec, book=book)
    assert out["monthly_storage_usd"] is None and "exceeds" in out["storage_basis"]


@pytest.mark.parametrize("text, where, msg", [
    ("kind: per_token\ninput_usd_per_mtok: -1\n", "field input_usd_per_mtok", "must be >= 0"),
    ("kind: subscription\nrecompute_usd_per_mtok: 1\ntiers:\n  - {name: a, capacity: 1GB, usd_per_month: 1}\n"
     "  - {name: b, usd_per_month: 2}\n", "field tiers[1].capacity", "required key is missing"),
    ("kind: nosuch\n", "field kind", "valid: anthropic, deepseek, gemini, openai, per_token"),
    ("kind: openai\ninput_usd_per_mtok: 1\nretention: [{label: m, idle: 5m}]\nincrement: 64\n",
     "field increment", "unknown key"),
    ("kind: storage\nrecompute_usd_per_mtok: 1\nmedia: {a: {usd_per_gib_month: 1}}\n",
     "field (top level)", "capacity"),
    ("kind: anthropic\ninput_usd_per_mtok: 1\nttl_options: [{label: x, ttl: soon, write_multiplier: 1}]\n",
     "field ttl_options[0].ttl", "not a duration"),
    ("kind: per_token\ninput_usd_per_mtok: [1\n", "line", "malformed YAML"),
    ("- 1\n- 2\n", None, "mapping"),
])
def test_bad_books_give_one_line_naming_file_and_field(tmp_path, text, where, msg):
    path = tmp_path / "book.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        load_pricebook(path)
    line = str(exc.value)
    assert "\n" not in line and str(path) in line and msg in line
    if where:
        assert where in line


def test_directory_loading(tmp_path):
    (tmp_path / "a.yaml").write_text("kind: per_token\ninput_usd_per_mtok: 1\n")
    (tmp_path / "b.yaml").write_text("kind: per_token\nname: a\ninput_usd_per_mtok: 2\n")
    with pytest.raises(InputError, match="unique"):
        load_pricebooks(tmp_path)
    (tmp_path / "b.yaml").unlink()
    (books,) = load_pricebooks(tmp_path)
    assert books.name == "a" and books.input_usd_per_mtok == 1
    with pytest.raises(InputError, match="no \\*.yaml"):
        load_pricebooks(_empty(tmp_path))
    with pytest.raises(InputError, match="unknown price book"):
        find_book(load_pricebooks(), "nosuch")


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_nan_prices_refused():
    with pytest.raises(InputError, match="finite"):
        book_from_dict({"kind": "per_token", "input_usd_per_mtok": math.nan}, source="x",
                       default_name="x")
