"""One hand-computed monthly bill per price-book kind on the same three-request trace.

The trace (llama-3.1-8b, 131,072 KV bytes a token = 1/8,192 GiB; 16-token blocks; no warm-up):

    t =   0 s  blocks [1, 2]     32 tokens   (cold: misses 32)
    t = 100 s  blocks [1, 2, 3]  48 tokens   (hits 32, misses 16)
    t = 200 s  blocks [1, 2, 3]  48 tokens   (hits 48)

128 input tokens, 80 hit with any cache that keeps entries 100 s; the 200-s window scales to a
month of 30 days by F = 2,592,000 / 200 = 12,960.  Every expected value below is written out
from these numbers; none is computed by the code under test.
"""

from __future__ import annotations

import pytest

from simkv.economics import parse_warmup
from tests.unit.test_bills import book, ctx_for, make_trace

F = 12_960.0
GIB_PER_TOKEN = 1 / 8192


def trace3():
    return make_trace([0.0, 100.0, 200.0], [[1, 2], [1, 2, 3], [1, 2, 3]], [32, 48, 48],
                      block_tokens=16)


def monthly(bill) -> float:
    return bill.total_usd()


def test_per_token():
    """128 tokens x $1/MTok x F = $1.65888."""
    (b,) = book(kind="per_token", name="p", input_usd_per_mtok=1.0).bills(ctx_for(trace3()))
    assert monthly(b) == pytest.approx(1.65888)


def test_anthropic():
    """5-minute TTL, writes 1.25x, reads 0.1x at $1/MTok: writes 32 + 16 = 48 tokens x $1.25
    = 60e-6, reads 80 x $0.1 = 8e-6; (68e-6) x F = $0.88128.  No-cache $1.65888."""
    b = book(kind="anthropic", name="a", input_usd_per_mtok=1.0, read_multiplier=0.1,
             min_cacheable_tokens=32, breakpoints="blocks",
             ttl_options=[{"label": "5m", "ttl": "5m", "write_multiplier": 1.25}])
    (bill,) = b.bills(ctx_for(trace3()))
    assert monthly(bill) == pytest.approx(0.88128)
    assert bill.baseline_total_usd() == pytest.approx(1.65888)


@pytest.mark.parametrize("write_multiplier, expected", [(None, 0.72576), (2.0, 1.34784)])
def test_openai(write_multiplier, expected):
    """Minimum 32, 16-token steps: reads 80 x $0.1 = 8e-6; the 48 unread cacheable tokens are
    free to write (48e-6 at the input price: 56e-6 x F = $0.72576) or 2x (96e-6 + 8e-6 =
    104e-6 x F = $1.34784)."""
    b = book(kind="openai", name="o", input_usd_per_mtok=1.0, read_multiplier=0.1,
             write_multiplier=write_multiplier, min_prefix_tokens=32, increment_tokens=16,
             retention=[{"label": "m", "idle": "5m"}])
    (bill,) = b.bills(ctx_for(trace3()))
    assert monthly(bill) == pytest.approx(expected)


def test_gemini_explicit_and_implicit():
    """Explicit (1 h from write, $3/MTok-hour, all blocks): reads 80 x $0.1 = 8e-6, input 48 x
    $1 = 48e-6; storage: blocks 1 and 2 live 0-200 s, block 3 100-200 s: 16 x (200 + 200 +
    100) = 8,000 token-seconds = 2.2222 token-hours x $3e-6 = 6.6667e-6; (56e-6 + 6.6667e-6)
    x F = $0.81216.  Implicit (5 min idle, no storage): 56e-6 x F = $0.72576."""
    b = book(kind="gemini", name="g", input_usd_per_mtok=1.0, read_fraction=0.1,
             storage_usd_per_mtok_hour=3.0, ttl="1h", ttl_mode="from_write",
             min_cacheable_tokens=32, cache_scope="all", implicit_idle="5m")
    explicit, implicit = b.bills(ctx_for(trace3()))
    assert explicit.provider == "g:explicit" and implicit.provider == "g:implicit"
    assert explicit.storage_token_hours == pytest.approx(8000 / 3600)
    assert monthly(explicit) == pytest.approx(0.81216)
    assert monthly(implicit) == pytest.approx(0.72576)


def test_gemini_minimum_limits_caches_not_readers():
    """Minimum 40 tokens.  Explicit: the 32-token prefix read at t = 100 s is below the
    minimum (no such cache), the 48-token one at t = 200 s is read although nothing cuts the
    reading request by its length: reads 48 x $0.1 = 4.8e-6, input 80 x $1 = 80e-6, storage as
    above 6.6667e-6 (cache_scope all); (84.8e-6 + 6.6667e-6) x F = $1.185408.  Implicit: the
    32-token request is below the minimum and bypasses; t = 100 s misses and writes; t = 200 s
    hits 48: (4.8e-6 + 80e-6) x F = $1.099008."""
    b = book(kind="gemini", name="g", input_usd_per_mtok=1.0, read_fraction=0.1,
             storage_usd_per_mtok_hour=3.0, ttl="1h", min_cacheable_tokens=40,
             cache_scope="all", implicit_idle="5m")
    explicit, implicit = b.bills(ctx_for(trace3()))
    assert list(explicit.hit_tokens) == [0, 0, 48]
    assert monthly(explicit) == pytest.approx((84.8e-6 + 8000 / 3600 * 3e-6) * F)
    assert monthly(explicit) == pytest.approx(1.185408)
    assert list(implicit.hit_tokens) == [0, 0, 48]
    assert monthly(implicit) == pytest.approx(1.099008)


def test_deepseek():
    """Hit $0.5, miss $2 per MTok, no unit rounding: (80 x 0.5 + 48 x 2) / 1e6 = 136e-6 x F =
    $1.76256; with 64-token units nothing hits (32 and 48 round down to 0): 128 x 2e-6 x F =
    $3.31776."""
    kw = dict(kind="deepseek", name="d", hit_usd_per_mtok=0.5, miss_usd_per_mtok=2.0)
    (b,) = book(**kw).bills(ctx_for(trace3()))
    assert monthly(b) == pytest.approx(1.76256)
    (old,) = book(**kw, unit_tokens=64).bills(ctx_for(trace3()))
    assert monthly(old) == pytest.approx(3.31776)


def test_subscription():
    """A free 0-byte tier recomputes everything ($1.65888); a 3-block tier (6,291,456 B) at $10
    holds the whole working set: 48 missed x $1e-6 x F = $0.62208 + $10 = $10.62208."""
    b = book(kind="subscription", name="s", recompute_usd_per_mtok=1.0, tiers=[
        {"name": "free", "capacity": 0, "usd_per_month": 0},
        {"name": "three", "capacity": 3 * 16 * 131072, "usd_per_month": 10}])
    free, three = b.bills(ctx_for(trace3()))
    assert monthly(free) == pytest.approx(1.65888)
    assert monthly(three) == pytest.approx(10.62208)


def test_storage_every_fee():
    """TTL 1 h; $1/GiB-month, PUT $1 and GET $2 per 1,000, $3/GiB written, $4/GiB read, $5/GiB
    egress, 1 GiB/s.  PUTs 2 + 1 = 3 ($0.003), GETs 2 + 3 = 5 ($0.010); written 48 tokens =
    48/8,192 GiB x $3 = $0.017578125; read 80/8,192 GiB x ($4 + $5) = $0.087890625; recompute
    48 x $1e-6.  Per window $0.11851675 x F = $1,535.97708.  Stored on average 8,000
    token-seconds / 200 s = 40 tokens = 40/8,192 GiB x $1 = $0.0048828125 (flat).  A hit loads
    on average 40/8,192 GiB at 1 GiB/s = 0.0048828125 s."""
    b = book(kind="storage", name="st", recompute_usd_per_mtok=1.0, ttl="1h",
             media={"m": {"usd_per_gib_month": 1.0, "usd_per_1k_put": 1.0, "usd_per_1k_get": 2.0,
                          "usd_per_gib_written": 3.0, "usd_per_gib_read": 4.0,
                          "usd_per_gib_egress": 5.0, "read_gib_per_s": 1.0}})
    (bill,) = b.bills(ctx_for(trace3()))
    c = bill.components()
    assert c["requests_usd"] == pytest.approx(0.013 * F)
    assert c["write_usd"] == pytest.approx(48 / 8192 * 3 * F)
    assert c["read_usd"] == pytest.approx(80 / 8192 * 4 * F)
    assert c["egress_usd"] == pytest.approx(80 / 8192 * 5 * F)
    assert c["storage_usd"] == pytest.approx(40 / 8192)
    assert monthly(bill) == pytest.approx(1535.97708 + 0.0048828125)
    assert bill.extra["mean_load_s_per_hit"] == pytest.approx(40 / 8192)


def test_self_hosted_fleet_busiest_hour(monkeypatch):
    """Sizing returns 2 replicas with the cache and 5 without (fixed here so the dollars can be
    checked by hand): 2 x 2 GPUs x $2.95 x 24 h x 30 days = $8,496; without $21,240; caching
    saves $12,744 and 6 GPUs."""
    import simkv.economics.fleet as fleet

    monkeypatch.setattr(fleet, "size_hour", lambda *a, **k: (2, 5, 0.5, 1.9))
    b = book(kind="self_hosted", name="h", usd_per_gpu_hour=2.95, gpus_per_replica=2,
             prefill_tokens_per_s=1e4)
    bill, marginal = b.bills(ctx_for(trace3()))
    assert bill.provider == "h:fleet" and marginal.provider == "h:marginal-gpu-seconds"
    assert monthly(bill) == pytest.approx(8496.0)
    assert bill.baseline_total_usd() == pytest.approx(21240.0)
    assert bill.savings_usd() == pytest.approx(12744.0)
    assert bill.extra["gpus_saved"] == 6
    # marginal: 48 missed tokens / 1e4 tok/s x 2 GPUs = 0.0096 GPU-s x $2.95/3600 x F
    assert monthly(marginal) == pytest.approx(48 / 1e4 * 2 * 2.95 / 3600 * F)


def test_self_hosted_fleet_unreachable_without_the_cache(monkeypatch):
    """Without a cache no replica count meets the objective (each prefill alone is too slow):
    no dollars are invented; the reason names the cached fleet, 2 x 1 x $2.95 x 720 = $4,248."""
    import simkv.economics.fleet as fleet
    from simkv.economics.bill import Unavailable

    monkeypatch.setattr(fleet, "size_hour", lambda *a, **k: (2, None, 0.5, 9.0))
    na, _ = book(kind="self_hosted", name="h", usd_per_gpu_hour=2.95).bills(ctx_for(trace3()))
    assert isinstance(na, Unavailable)
    assert "without it" in na.reason and "$4,248.00/month" in na.reason


def test_self_hosted_fleet_per_hour_autoscaling(monkeypatch):
    """A 2.5-hour trace, one request every 10 min: hours 0 and 1 full, hour 2 half (weight 0.5).
    Sizing gives hour 0 -> (1, 2), hour 1 -> (3, 6), hour 2 -> (2, 4) replicas: the month pays
    (1 + 3 + 0.5 x 2) / 2.5 = 2.0 replicas with the cache and (2 + 6 + 0.5 x 4) / 2.5 = 4.0
    without: 2 x $1 x 720 h = $1,440 vs $2,880.  Busiest-hour sizing (hour 1 has the most
    tokens) pays 3 vs 6: $2,160 vs $4,320."""
    import simkv.economics.fleet as fleet

    times = [600.0 * i for i in range(16)]  # 0 .. 9,000 s
    inputs = [32] * 6 + [48] * 6 + [32] * 4
    tr = make_trace(times, [[1, 2, 3][: t // 16] for t in inputs], inputs, block_tokens=16)
    by_hour = {0: (1, 2), 1: (3, 6), 2: (2, 4)}
    monkeypatch.setattr(fleet, "size_hour", lambda sub, *a, **k: (
        *by_hour[int(sub.arrival_s[0] // 3600)], 0.1, 0.2))
    kw = dict(kind="self_hosted", name="h", usd_per_gpu_hour=1.0, prefill_tokens_per_s=1e4)
    ctx = ctx_for(tr, warmup=parse_warmup("0"))
    auto, _ = book(**kw, sizing="per_hour").bills(ctx)
    assert auto.extra["replicas_with_cache"] == pytest.approx(2.0)
    assert monthly(auto) == pytest.approx(1440.0)
    assert auto.baseline_total_usd() == pytest.approx(2880.0)
    busy, _ = book(**kw).bills(ctx)
    assert monthly(busy) == pytest.approx(2160.0) and busy.baseline_total_usd() == pytest.approx(4320.0)


def test_self_hosted_fleet_from_the_serving_simulation():
    """Not mocked: 400 requests sharing one 8,192-token prefix, 20 a second, on H100s at TTFT
    p90 <= 2 s.  Without a cache each request prefills 8,192 tokens; with one, 16: the cached
    fleet must be strictly smaller (and both reachable)."""
    n = 400
    tr = make_trace([0.05 * i for i in range(n)], [list(range(512)) + [10_000 + i] for i in range(n)],
                    [8192 + 16] * n, block_tokens=16)
    b = book(kind="self_hosted", name="h", usd_per_gpu_hour=1.0, prefill_tokens_per_s=1e4)
    fleet_bill, _ = b.bills(ctx_for(tr))
    assert fleet_bill.extra["replicas_with_cache"] < fleet_bill.extra["replicas_without_cache"]


def test_per_hour_fleet_counts_idle_hours_as_zero(monkeypatch):
    """Requests in hours 0 and 2 only (the last at 9,000 s, so hour 2 has weight 0.5): with 2
    replicas whenever there is traffic, the month pays (2 + 0 + 0.5 x 2) / 2.5 = 1.2 replicas."""
    import simkv.economics.fleet as fleet

    monkeypatch.setattr(fleet, "size_hour", lambda *a, **k: (2, 2, 0.1, 0.1))
    tr = make_trace([0.0, 600.0, 7300.0, 9000.0], [[1, 2]] * 4, [32] * 4, block_tokens=16)
    auto, _ = book(kind="self_hosted", name="h", usd_per_gpu_hour=1.0, prefill_tokens_per_s=1e4,
                   sizing="per_hour").bills(ctx_for(tr))
    assert auto.extra["replicas_with_cache"] == pytest.approx(1.2)


def test_deepseek_cache_prefix_units():
    """Prompts A+B, A+C, A+D (16-token blocks, 32 tokens each, at 0, 100, 200 s).  Block match:
    the 2nd and 3rd hit A (16 tokens each): (32 x $0.5 + 64 x $2) / 1e6 x F = $1.86624.  Prefix
    units: A+B's end is a unit, A is not, so the 2nd misses; A is then detected as common and
    persisted, so the 3rd hits: (16 x 0.5 + 80 x 2) / 1e6 x F = $2.17728.  As turns of one
    session, each later turn reads its predecessor's end-of-output unit: $1.86624 again."""
    kw = dict(kind="deepseek", name="d", hit_usd_per_mtok=0.5, miss_usd_per_mtok=2.0)
    chains, times = [[1, 2], [1, 3], [1, 4]], [0.0, 100.0, 200.0]
    tr = make_trace(times, chains, [32] * 3, block_tokens=16)
    (units,) = book(**kw).bills(ctx_for(tr))
    assert list(units.hit_tokens) == [0, 0, 16] and monthly(units) == pytest.approx(2.17728)
    (blocks,) = book(**kw, prefix_units=False).bills(ctx_for(tr))
    assert list(blocks.hit_tokens) == [0, 16, 16] and monthly(blocks) == pytest.approx(1.86624)
    chat = make_trace(times, chains, [32] * 3, block_tokens=16, sessions=[7, 7, 7])
    (turns,) = book(**kw).bills(ctx_for(chat))
    assert list(turns.hit_tokens) == [0, 16, 16] and monthly(turns) == pytest.approx(1.86624)
