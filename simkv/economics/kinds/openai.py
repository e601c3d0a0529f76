"""``openai``: automatic prompt caching over a minimum prefix, in fixed token increments.

Semantics: prompts of at least ``min_prefix_tokens`` are cached automatically; a hit is the
matched prefix rounded down to ``increment_tokens`` (128) and counts only from the minimum;
cached tokens cost ``read_multiplier`` x input.  Retention: an entry is cleared after
``idle`` seconds without use (in-memory: minutes; extended: 24 h).  The provider's "always
within 1 h" cap on in-memory entries is not modelled (only the idle timer).  Writes are free
unless ``write_multiplier`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field

from simkv.cache import CacheConfig
from simkv.economics.bill import Bill, usd
from simkv.economics.book import PRICEBOOK_KINDS, BookSchema, Kind, PriceBook
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import (
    Charges,
    Duration,
    PositiveTokens,
    Price,
    TokenCount,
    floor_to_unit,
    hits_and_writes,
    make_bill,
)
from simkv.economics.runs import CacheRun, View
from simkv.validate import UserModel


class Retention(UserModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str
    idle: Duration


class OpenAISchema(BookSchema):
    kind: Literal["openai"]
    model: str = ""
    input_usd_per_mtok: Price
    read_multiplier: Price = 0.1
    write_multiplier: Price | None = None
    min_prefix_tokens: TokenCount = 1024
    increment_tokens: PositiveTokens = 128
    retention: list[Retention] = Field(min_length=1)


@dataclass(frozen=True)
class OpenAIBook(PriceBook):
    name: str
    input_usd_per_mtok: float
    read_multiplier: float
    write_multiplier: float | None
    min_prefix_tokens: int
    increment_tokens: int
    retention: tuple[Retention, ...]
    model: str = ""
    kind: str = "openai"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    figures: tuple = ()

    def bills(self, ctx: BillContext) -> list[Bill]:
        out = []
        wnote = ("writes free" if self.write_multiplier is None
                 else f"writes {self.write_multiplier:g}x")
        for ret in self.retention:
            run = ctx.run(CacheConfig(ttl_s=ret.idle, ttl_mode="refresh_on_hit"),
                          self.min_prefix_tokens)
            out.append(make_bill(
                ctx, ctx.window(run), provider=f"{self.name}:{ret.label}", kind=self.kind,
                price=lambda v, run=run: self._price(v, run), placeholder=self.placeholder,
                notes=(f"cleared after {ret.idle:g} s idle; hits in {self.increment_tokens}-token "
                       f"steps from {self.min_prefix_tokens}; reads {self.read_multiplier:g}x; "
                       f"{wnote}",)))
        return out

    def _price(self, v: View, run: CacheRun) -> Charges:
        p = self.input_usd_per_mtok
        inp = v.input_tokens
        r = v.run(run)
        hit = floor_to_unit(r.hit_tokens, self.increment_tokens, self.min_prefix_tokens)
        read, _, _ = hits_and_writes(r, inp, hit)
        cacheable = np.where(r.eligible, floor_to_unit(inp, self.increment_tokens), 0)
        written = np.maximum(cacheable - read, 0)
        plain = inp - read - written
        if self.write_multiplier is None:
            charges = {"input_usd": usd(plain + written, p)}
        else:
            charges = {"input_usd": usd(plain, p),
                       "cache_write_usd": usd(written, p * self.write_multiplier)}
        charges["cache_read_usd"] = usd(read, p * self.read_multiplier)
        return Charges(hit_tokens=read, written_tokens=written, request_usd=charges,
                       baseline_usd=usd(inp, p))


def _build(s: OpenAISchema, name: str) -> OpenAIBook:
    return OpenAIBook(name=name, input_usd_per_mtok=s.input_usd_per_mtok,
                      read_multiplier=s.read_multiplier, write_multiplier=s.write_multiplier,
                      min_prefix_tokens=s.min_prefix_tokens, increment_tokens=s.increment_tokens,
                      retention=tuple(s.retention), model=s.model, source=s.source,
                      as_of=s.as_of, placeholder=s.placeholder)


PRICEBOOK_KINDS.register("openai", Kind(OpenAISchema, _build,
                                        "automatic prefix caching in 128-token steps"))
