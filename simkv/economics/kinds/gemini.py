"""``gemini``: explicit context caches (TTL, cheap reads, hourly storage) and implicit caching.

Two bills per book:

- ``explicit``: cached content is written at the normal input price, read at
  ``read_fraction`` of it, and stored at ``storage_usd_per_mtok_hour`` for as long as it lives.
  A cache lives ``ttl`` from its creation (``ttl_mode: from_write``, the API's default) or from
  its last use (``refresh_on_hit``).  The model's minimum (``min_tokens_by_model``) limits what
  can be *cached* (a hit counts when the cached prefix it matches has at least that many
  tokens), not which requests read: a request of any length that starts with cached content
  reads it at the cached price (no minimum-length cut on the reading request).  The engine runs
  on every request; short requests' own blocks may be counted as stored (an upper bound on
  storage).  ``cache_scope: shared`` stores only blocks that appear in two or more requests.
- ``implicit``: on by default for Gemini 2.5 and newer; hits of prompts at or above the minimum
  are read at ``read_fraction``, nothing is charged for storage, and the lifetime (not
  published) is an idle timer ``implicit_idle`` (an assumption).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simkv.cache import CacheConfig
from simkv.economics.bill import MTOK, Bill, usd
from simkv.economics.book import PRICEBOOK_KINDS, BookSchema, Kind, PriceBook, StorageQuote
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import (
    Charges,
    Duration,
    Price,
    TokenCount,
    floor_to_unit,
    hits_and_writes,
    make_bill,
)
from simkv.economics.runs import View


class GeminiSchema(BookSchema):
    kind: Literal["gemini"]
    model: str = ""
    input_usd_per_mtok: Price
    read_fraction: Price = 0.1
    storage_usd_per_mtok_hour: Price
    ttl: Duration = 3600.0
    ttl_mode: Literal["from_write", "refresh_on_hit"] = "from_write"
    min_cacheable_tokens: TokenCount | None = None
    min_tokens_by_model: dict[str, TokenCount] = {}
    cache_scope: Literal["shared", "all"] = "shared"
    implicit_idle: Duration | None = None

    def min_tokens(self) -> int:
        """The explicit minimum, else the model's entry of ``min_tokens_by_model``, else 4,096."""
        if self.min_cacheable_tokens is not None:
            return self.min_cacheable_tokens
        return self.min_tokens_by_model.get(self.model, 4096)


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
    implicit_idle_s: float | None = None
    model: str = ""
    kind: str = "gemini"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    figures: tuple = ()

    def bills(self, ctx: BillContext) -> list[Bill]:
        p = self.input_usd_per_mtok
        # explicit: every request may read a cache (no minimum on reads)
        run = ctx.run(CacheConfig(ttl_s=self.ttl_s, ttl_mode=self.ttl_mode), 0)
        window = ctx.window(run)

        def explicit(v: View) -> Charges:
            read = floor_to_unit(v.run(run).hit_tokens, 1, self.min_cacheable_tokens)
            written = v.input_tokens - read
            return Charges(hit_tokens=read, written_tokens=written,
                           request_usd={"input_usd": usd(written, p),
                                        "cache_read_usd": usd(read, p * self.read_fraction)},
                           baseline_usd=usd(v.input_tokens, p))

        token_s = ctx.stored_token_seconds(run, window, shared_only=self.cache_scope == "shared")
        token_h = token_s / 3600.0
        out = [make_bill(
            ctx, window, provider=f"{self.name}:explicit", kind=self.kind, price=explicit,
            window_usd={"storage_usd": token_h * self.storage_usd_per_mtok_hour / MTOK},
            storage_token_hours=token_h, placeholder=self.placeholder,
            notes=(f"explicit caches live {self.ttl_s:g} s ({self.ttl_mode}); storage "
                   f"${self.storage_usd_per_mtok_hour:g}/MTok-hour on {self.cache_scope} blocks; "
                   f"reads {self.read_fraction:g}x by requests of any length of cached prefixes "
                   f">= {self.min_cacheable_tokens} tokens",))]
        if self.implicit_idle_s is not None:
            irun = ctx.run(CacheConfig(ttl_s=self.implicit_idle_s, ttl_mode="refresh_on_hit"),
                           self.min_cacheable_tokens)

            def implicit(v: View) -> Charges:
                r = v.run(irun)
                iread, iwritten, bypass = hits_and_writes(r, v.input_tokens, r.hit_tokens)
                return Charges(hit_tokens=iread, written_tokens=iwritten,
                               request_usd={"input_usd": usd(iwritten + bypass, p),
                                            "cache_read_usd": usd(iread, p * self.read_fraction)},
                               baseline_usd=usd(v.input_tokens, p))

            out.append(make_bill(
                ctx, ctx.window(irun), provider=f"{self.name}:implicit", kind=self.kind,
                price=implicit, placeholder=self.placeholder,
                notes=(f"implicit caching: prompts >= {self.min_cacheable_tokens} tokens, reads "
                       f"{self.read_fraction:g}x, no storage charge; lifetime {self.implicit_idle_s:g}"
                       " s idle (an assumption: not published)",)))
        return out

    def storage_quotes(self, tokens: int, kv_bytes: float, days: float, *,
                       reads_per_month: float = 0.0) -> list[StorageQuote]:
        """An explicit cache kept all month, read ``reads_per_month`` times at the cached price."""
        store = tokens / MTOK * self.storage_usd_per_mtok_hour * 24.0 * days
        read = tokens * reads_per_month / MTOK * self.input_usd_per_mtok * self.read_fraction
        return [StorageQuote(self.name, "", store + read,
                             f"{tokens:,} tokens x ${self.storage_usd_per_mtok_hour:g}/MTok-hour "
                             f"x 24 h x {days:g} days, read {reads_per_month:,.0f} times at "
                             f"${self.input_usd_per_mtok * self.read_fraction:g}/MTok",
                             self.placeholder,
                             components_usd=(("storage_usd", store), ("read_usd", read)),
                             status=self.status())]


def _build(s: GeminiSchema, name: str) -> GeminiBook:
    return GeminiBook(name=name, input_usd_per_mtok=s.input_usd_per_mtok,
                      read_fraction=s.read_fraction,
                      storage_usd_per_mtok_hour=s.storage_usd_per_mtok_hour, ttl_s=s.ttl,
                      ttl_mode=s.ttl_mode, min_cacheable_tokens=s.min_tokens(),
                      cache_scope=s.cache_scope, implicit_idle_s=s.implicit_idle, model=s.model, source=s.source, as_of=s.as_of,
                      placeholder=s.placeholder)


PRICEBOOK_KINDS.register("gemini", Kind(GeminiSchema, _build,
                                        "explicit caches: TTL, cheap reads, $/MTok-hour storage"))
