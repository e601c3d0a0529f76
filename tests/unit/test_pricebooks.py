"""Price books: shipped defaults, the registry, validation errors naming file and field."""

from __future__ import annotations

import math

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


def test_shipped_figures_match_facts():
    books = {b.name: b for b in load_pricebooks()}
    a = books["anthropic"]
    assert {o.label: o.write_multiplier for o in a.ttl_options} == {"5m": 1.25, "1h": 2.0}
    assert {o.label: o.ttl for o in a.ttl_options} == {"5m": 300.0, "1h": 3600.0}
    assert a.read_multiplier == 0.1
    o = books["openai"]
    assert (o.min_prefix_tokens, o.increment_tokens) == (1024, 128)
    g = books["gemini"]
    assert (g.storage_usd_per_mtok_hour, g.input_usd_per_mtok * g.read_fraction) == (4.5, 0.125)
    d = books["deepseek"]
    assert (d.hit_usd_per_mtok, d.miss_usd_per_mtok, d.unit_tokens) == (0.0028, 0.14, 64)


def test_cost_case_figures_of_the_brief():
    assert monthly_recompute_usd(32_000, 2_000, 0.15) == pytest.approx(288.0)
    assert monthly_recompute_usd(24_000, 150_000, 0.15) == pytest.approx(16_200.0)
    spec = get_model("llama-3.1-8b")
    books = load_pricebooks()
    book, variant = find_book(books, "storage:object_store")
    out = cost_case(32_000, 2_000, 0.15, days_per_month=30, spec=spec, book=book, variant=variant)
    assert out["monthly_recompute_usd"] == 288.0
    assert out["kv_bytes"] == spec.kv_bytes(32_000) == 32_000 * 131_072
    storage = out["kv_bytes"] / 2**30 * 0.11
    assert out["monthly_storage_usd"] == pytest.approx(storage)
    assert out["recompute_to_storage_ratio"] == pytest.approx(288.0 / storage)
    book, _ = find_book(books, "gemini")
    out = cost_case(32_000, 2_000, 0.15, days_per_month=30, spec=spec, book=book)
    assert out["monthly_storage_usd"] == pytest.approx(0.032 * 4.5 * 24 * 30)
    book, _ = find_book(books, "bucket")
    out = cost_case(32_000, 2_000, 0.15, days_per_month=30, spec=spec, book=book)
    assert out["pricebook"] == "bucket:bronze" and out["placeholder"]
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
