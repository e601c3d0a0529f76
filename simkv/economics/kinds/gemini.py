"""``gemini``: explicit context caches with a TTL, cheap reads and hourly storage.

Semantics: cached content is written at the normal input price, read at ``read_fraction`` of
it, and stored at ``storage_usd_per_mtok_hour`` for as long as it lives.  A cache lives ``ttl``
from its creation (``ttl_mode: from_write``, the API's default) or from its last use
(``refresh_on_hit``, an application that extends the TTL on use).  Prompts below the minimum
are not cached.  ``cache_scope: shared`` stores only blocks that appear in two or more requests
(what an application would choose to cache explicitly); ``all`` stores every prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simkv.cache import CacheConfig
from simkv.economics.bill import MTOK, Bill, usd
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import Duration, Price, TokenCount, hits_and_writes, make_bill
from simkv.economics.pricebook import PRICEBOOK_KINDS, BookSchema, Kind, PriceBook, StorageQuote


class GeminiSchema(BookSchema):
    kind: Literal["gemini"]
    model: str = ""
    input_usd_per_mtok: Price
    read_fraction: Price = 0.1
    storage_usd_per_mtok_hour: Price
    ttl: Duration = 3600.0
    ttl_mode: Literal["from_write", "refresh_on_hit"] = "from_write"
    min_cacheable_tokens: TokenCount = 4096
    cache_scope: Literal["shared", "all"] = "shared"


@dataclass(frozen=True)
class GeminiBook(PriceBook):
    name: str
    input_usd_per_mtok: float
    read_fraction: float
    storage_usd_per_mtok_hour: float
    ttl_s: float
    ttl_mode: str
    min_cacheable_tokens: int
    cache_scope: str
    model: str = ""
    kind: str = "gemini"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False

    def bills(self, ctx: BillContext) -> list[Bill]:
        p = self.input_usd_per_mtok
        run = ctx.run(CacheConfig(ttl_s=self.ttl_s, ttl_mode=self.ttl_mode),
                      self.min_cacheable_tokens)
        window = ctx.window(run)
        hit = run.hit_tokens
        read, written, bypass = hits_and_writes(ctx, run, hit)
        token_s = ctx.stored_token_seconds(run, window, shared_only=self.cache_scope == "shared")
        token_h = token_s / 3600.0
        inp = ctx.trace.input_tokens
        return [make_bill(
            ctx, window, provider=self.name, kind=self.kind, hit_tokens=read,
            written_tokens=written,
            request_usd={"input_usd": usd(written + bypass, p),
                         "cache_read_usd": usd(read, p * self.read_fraction)},
            window_usd={"storage_usd": token_h * self.storage_usd_per_mtok_hour / MTOK},
            baseline_usd=usd(inp, p), storage_token_hours=token_h, placeholder=self.placeholder,
            notes=(f"explicit caches live {self.ttl_s:g} s ({self.ttl_mode}); storage "
                   f"${self.storage_usd_per_mtok_hour:g}/MTok-hour on {self.cache_scope} blocks; "
                   f"reads {self.read_fraction:g}x; prompts < {self.min_cacheable_tokens} "
                   "tokens not cached",))]

    def storage_quotes(self, tokens: int, kv_bytes: float, days: float) -> list[StorageQuote]:
        usd_month = tokens / MTOK * self.storage_usd_per_mtok_hour * 24.0 * days
        return [StorageQuote(self.name, "", usd_month,
                             f"{tokens:,} tokens x ${self.storage_usd_per_mtok_hour:g}/MTok-hour "
                             f"x 24 h x {days:g} days", self.placeholder)]


def _build(s: GeminiSchema, name: str) -> GeminiBook:
    return GeminiBook(name=name, input_usd_per_mtok=s.input_usd_per_mtok,
                      read_fraction=s.read_fraction,
                      storage_usd_per_mtok_hour=s.storage_usd_per_mtok_hour, ttl_s=s.ttl,
                      ttl_mode=s.ttl_mode, min_cacheable_tokens=s.min_cacheable_tokens,
                      cache_scope=s.cache_scope, model=s.model, source=s.source, as_of=s.as_of,
                      placeholder=s.placeholder)


PRICEBOOK_KINDS.register("gemini", Kind(GeminiSchema, _build,
                                        "explicit caches: TTL, cheap reads, $/MTok-hour storage"))
