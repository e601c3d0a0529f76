"""``deepseek``: disk cache with hit and miss prices, cache prefix units and best-effort retention.

Semantics (api-docs.deepseek.com/guides/kv_cache): every request persists "cache prefix units"
at the end of its input and of its output, the system persists a prefix it detects as common
to several requests, and long inputs get units at fixed token intervals; a later request hits
only a prefix that *fully* matches a persisted unit.  Hits are billed at the hit price, the
rest at the miss price.  With ``prefix_units: true`` (default) simkv applies that rule on top
of the cache engine's prefix match (which already honours the retention timer):

- the matched prefix counts when it ends where an earlier request's input ended, or at a
  common prefix persisted earlier; otherwise the longest such unit inside it counts;
- the matched prefix is then persisted as a detected common prefix (so the *first* request to
  share only part of an earlier prompt misses, the next ones hit);
- a request continuing a session (a later turn) reads its predecessor's end-of-output unit:
  its whole match counts;
- the fixed-interval units are not modelled (their interval is not published): an
  undercount for long prompts that share only a part.

``unit_tokens`` (optional) rounds hits down to a token unit (the 2024 rule was 64 tokens).
Retention is best effort ("hours to days"): an idle timer ``retention`` (an assumption).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from simkv.cache import CacheConfig
from simkv.economics.bill import Bill, usd
from simkv.economics.book import PRICEBOOK_KINDS, BookSchema, Kind, PriceBook
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import (
    Charges,
    Duration,
    PositiveTokens,
    Price,
    floor_to_unit,
    hits_and_writes,
    make_bill,
)
from simkv.economics.runs import CacheRun, RunChunk, View
from simkv.trace.model import NO_ID, Trace


class DeepSeekSchema(BookSchema):
    kind: Literal["deepseek"]
    model: str = ""
    hit_usd_per_mtok: Price
    miss_usd_per_mtok: Price
    unit_tokens: PositiveTokens | None = None
    prefix_units: bool = True
    retention: Duration = 6 * 3600.0


class PrefixUnits:
    """Hit tokens per request under the prefix-unit rule (see the module docstring), called
    on every chunk of requests in order (the persisted units and the sessions seen carry over
    from one chunk to the next)."""

    def __init__(self) -> None:
        self.units: set[int] = set()
        self.seen_sessions: set[int] = set()

    def __call__(self, c: Trace, run: RunChunk) -> np.ndarray:
        """The rule over chunk ``c`` (``run``: the engine's outcomes for its requests)."""
        out = np.zeros(c.n_requests, dtype=np.int64)
        offs, h, sess = c.block_offsets, c.block_hashes, c.session_ids
        units, seen = self.units, self.seen_sessions
        hit_blocks, hit_tokens, eligible = run.hit_blocks, run.hit_tokens, run.eligible
        for r in range(c.n_requests):
            lo, hi = int(offs[r]), int(offs[r + 1])
            k = int(hit_blocks[r])
            s = int(sess[r])
            if k > 0 and eligible[r]:
                j = k
                if s == NO_ID or s not in seen:
                    while j > 0 and int(h[lo + j - 1]) not in units:
                        j -= 1
                out[r] = int(hit_tokens[r]) if j == k else min(j * c.block_tokens,
                                                                int(hit_tokens[r]))
                units.add(int(h[lo + k - 1]))  # the shared prefix, now detected and persisted
            if hi > lo:
                units.add(int(h[hi - 1]))  # the end of this request's input
            if s != NO_ID:
                seen.add(s)
        return out


def unit_hit_tokens(ctx: BillContext, run: CacheRun) -> np.ndarray:
    """:class:`PrefixUnits` over the whole trace at once (tests, small traces)."""
    pu = PrefixUnits()
    parts = [pu(v.trace, v.run(run)) for v in ctx.views(blocks=True, columns=())]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class DeepSeekBook(PriceBook):
    name: str
    hit_usd_per_mtok: float
    miss_usd_per_mtok: float
    unit_tokens: int | None
    retention_s: float
    prefix_units: bool = True
    model: str = ""
    kind: str = "deepseek"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    figures: tuple = ()

    def bills(self, ctx: BillContext) -> list[Bill]:
        unit = self.unit_tokens or 1
        run = ctx.run(CacheConfig(ttl_s=self.retention_s, ttl_mode="refresh_on_hit"), unit)
        units = PrefixUnits() if self.prefix_units else None

        def price(v: View) -> Charges:
            r = v.run(run)
            hit = floor_to_unit(r.hit_tokens if units is None else units(v.trace, r), unit)
            read, written, bypass = hits_and_writes(r, v.input_tokens, hit)
            return Charges(hit_tokens=read, written_tokens=written,
                           request_usd={"miss_usd": usd(written + bypass, self.miss_usd_per_mtok),
                                        "hit_usd": usd(read, self.hit_usd_per_mtok)},
                           baseline_usd=usd(v.input_tokens, self.miss_usd_per_mtok))

        rule = ("hits must fully match a persisted cache prefix unit (request ends, detected "
                "common prefixes; fixed-interval units not modelled)" if self.prefix_units
                else "hits at the trace's block granularity")
        if self.unit_tokens:
            rule += f", rounded down to {self.unit_tokens}-token units"
        return [make_bill(
            ctx, ctx.window(run), provider=self.name, kind=self.kind, price=price,
            blocks=units is not None, block_columns=(), placeholder=self.placeholder,
            notes=(f"{rule}; best-effort retention modelled as {self.retention_s:g} s idle "
                   "(assumption)",))]


def _build(s: DeepSeekSchema, name: str) -> DeepSeekBook:
    return DeepSeekBook(name=name, hit_usd_per_mtok=s.hit_usd_per_mtok,
                        miss_usd_per_mtok=s.miss_usd_per_mtok, unit_tokens=s.unit_tokens,
                        retention_s=s.retention, prefix_units=s.prefix_units, model=s.model,
                        source=s.source, as_of=s.as_of, placeholder=s.placeholder)


PRICEBOOK_KINDS.register("deepseek", Kind(DeepSeekSchema, _build,
                                          "hit and miss prices, cache prefix units"))
