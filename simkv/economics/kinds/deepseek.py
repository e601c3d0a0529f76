"""``deepseek``: disk cache with hit and miss prices and best-effort retention.

Semantics: every prompt is cached in ``unit_tokens`` units (64); a hit is the matched prefix
rounded down to the unit and billed at the hit price, the rest at the miss price.  Retention
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
    unit_tokens: PositiveTokens = 64
    retention: Duration = 6 * 3600.0


@dataclass(frozen=True)
class DeepSeekBook(PriceBook):
    name: str
    hit_usd_per_mtok: float
    miss_usd_per_mtok: float
    unit_tokens: int
    retention_s: float
    model: str = ""
    kind: str = "deepseek"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False

    def bills(self, ctx: BillContext) -> list[Bill]:
        run = ctx.run(CacheConfig(ttl_s=self.retention_s, ttl_mode="refresh_on_hit"),
                      self.unit_tokens)
        hit = floor_to_unit(run.hit_tokens, self.unit_tokens)
        read, written, bypass = hits_and_writes(ctx, run, hit)
        inp = ctx.trace.input_tokens
        return [make_bill(
            ctx, ctx.window(run), provider=self.name, kind=self.kind, hit_tokens=read,
            written_tokens=written,
            request_usd={"miss_usd": usd(written + bypass, self.miss_usd_per_mtok),
                         "hit_usd": usd(read, self.hit_usd_per_mtok)},
            baseline_usd=usd(inp, self.miss_usd_per_mtok), placeholder=self.placeholder,
            notes=(f"hits in {self.unit_tokens}-token units; best-effort retention modelled as "
                   f"{self.retention_s:g} s idle (assumption)",))]


def _build(s: DeepSeekSchema, name: str) -> DeepSeekBook:
    return DeepSeekBook(name=name, hit_usd_per_mtok=s.hit_usd_per_mtok,
                        miss_usd_per_mtok=s.miss_usd_per_mtok, unit_tokens=s.unit_tokens,
                        retention_s=s.retention, model=s.model, source=s.source, as_of=s.as_of,
                        placeholder=s.placeholder)


PRICEBOOK_KINDS.register("deepseek", Kind(DeepSeekSchema, _build,
                                          "hit and miss prices, 64-token units"))
