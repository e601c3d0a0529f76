"""``deepseek``: disk cache with hit and miss prices and best-effort retention.

Semantics: every prompt is cached; a hit is the matched prefix, billed at the hit price, the
rest at the miss price.  DeepSeek's current guide stores "cache prefix units" (at the end of
each request's input and output, at common prefixes it detects, and at fixed token intervals)
and a hit must fully match one; simkv finds hits at the trace's block granularity, which is an
upper bound (the first request sharing only part of an earlier prompt may miss there).  With
``unit_tokens`` set, hits are rounded down to it (the 2024 rule was 64-token units).  Retention
is best effort ("hours to days"): modelled as an idle timer ``retention`` (an assumption the
user should vary).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simkv.cache import CacheConfig
from simkv.economics.bill import Bill, usd
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import (
    Duration,
    PositiveTokens,
    Price,
    floor_to_unit,
    hits_and_writes,
    make_bill,
)
from simkv.economics.pricebook import PRICEBOOK_KINDS, BookSchema, Kind, PriceBook


class DeepSeekSchema(BookSchema):
    kind: Literal["deepseek"]
    model: str = ""
    hit_usd_per_mtok: Price
    miss_usd_per_mtok: Price
    unit_tokens: PositiveTokens | None = None
    retention: Duration = 6 * 3600.0


@dataclass(frozen=True)
class DeepSeekBook(PriceBook):
    name: str
    hit_usd_per_mtok: float
    miss_usd_per_mtok: float
    unit_tokens: int | None
    retention_s: float
    model: str = ""
    kind: str = "deepseek"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    figures: tuple = ()

    def bills(self, ctx: BillContext) -> list[Bill]:
        unit = self.unit_tokens or 1
        run = ctx.run(CacheConfig(ttl_s=self.retention_s, ttl_mode="refresh_on_hit"), unit)
        hit = floor_to_unit(run.hit_tokens, unit)
        read, written, bypass = hits_and_writes(ctx, run, hit)
        inp = ctx.trace.input_tokens
        return [make_bill(
            ctx, ctx.window(run), provider=self.name, kind=self.kind, hit_tokens=read,
            written_tokens=written,
            request_usd={"miss_usd": usd(written + bypass, self.miss_usd_per_mtok),
                         "hit_usd": usd(read, self.hit_usd_per_mtok)},
            baseline_usd=usd(inp, self.miss_usd_per_mtok), placeholder=self.placeholder,
            notes=((f"hits in {self.unit_tokens}-token units" if self.unit_tokens else
                    "hits at the trace's block granularity (cache prefix units, an upper bound)")
                   + "; best-effort retention modelled as "
                   + f"{self.retention_s:g} s idle (assumption)",))]


def _build(s: DeepSeekSchema, name: str) -> DeepSeekBook:
    return DeepSeekBook(name=name, hit_usd_per_mtok=s.hit_usd_per_mtok,
                        miss_usd_per_mtok=s.miss_usd_per_mtok, unit_tokens=s.unit_tokens,
                        retention_s=s.retention, model=s.model, source=s.source, as_of=s.as_of,
                        placeholder=s.placeholder)


PRICEBOOK_KINDS.register("deepseek", Kind(DeepSeekSchema, _build,
                                          "hit and miss prices, cache prefix units"))
