"""``subscription``: a persistent bucket sold by capacity tier at a flat monthly price.

Semantics: cached reads are free; a miss is recomputed at ``recompute_usd_per_mtok``; the
bucket holds ``capacity`` bytes of KV for the trace's model and evicts by ``policy`` when full
(the cache engine, capacity in bytes through the model's KV geometry).  No TTL: entries leave
only by eviction.  Upgrading keeps the data (the product's promise), so a tier is judged on its
steady state.  The shipped tier sizes and prices are placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from simkv.economics.bill import Bill, usd
from simkv.economics.book import (
    PLACEHOLDER_NOTE,
    PRICEBOOK_KINDS,
    BookSchema,
    Kind,
    PriceBook,
    StorageQuote,
)
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import Charges, Price, Size, make_bill
from simkv.economics.runs import View
from simkv.units import format_bytes
from simkv.validate import UserModel


class Tier(UserModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    capacity: Size
    usd_per_month: Price


class SubscriptionSchema(BookSchema):
    kind: Literal["subscription"]
    recompute_usd_per_mtok: Price
    policy: str = "lru"
    tiers: list[Tier] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self):
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")
        from simkv.cache.policies import POLICIES

        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r} (valid: {', '.join(POLICIES.names())})")
        return self


@dataclass(frozen=True)
class SubscriptionBook(PriceBook):
    name: str
    recompute_usd_per_mtok: float
    policy: str
    tiers: tuple[Tier, ...]
    kind: str = "subscription"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    figures: tuple = ()
    supports_chunk: bool = True

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        from simkv.errors import InputError

        raise InputError(f"unknown tier {name!r} (tiers: {', '.join(t.name for t in self.tiers)})",
                         where="tier")

    def tier_bill(self, ctx: BillContext, tier: Tier | None) -> Bill:
        """The bill of one tier; ``None`` = an unlimited bucket with no price (achievable)."""
        p = self.recompute_usd_per_mtok
        if tier is not None and tier.capacity == 0:
            run = None
            window = ctx.window()
        else:
            cap = None if tier is None else tier.capacity
            run = ctx.run(ctx.cache_config(capacity_bytes=cap, policy=self.policy))
            window = ctx.window(run)

        def price(v: View) -> Charges:
            inp = v.input_tokens
            hit = np.zeros_like(inp) if run is None else v.run(run).hit_tokens
            missed = inp - hit
            return Charges(hit_tokens=hit, written_tokens=missed,
                           request_usd={"recompute_usd": usd(missed, p)},
                           baseline_usd=usd(inp, p))

        label = "unlimited" if tier is None else tier.name
        notes = [f"{label}: {'no capacity limit' if tier is None else format_bytes(tier.capacity)}"
                 f" of {ctx.spec.name} KV, {self.policy} eviction, cached reads free"]
        if self.placeholder and tier is not None:
            notes.append(PLACEHOLDER_NOTE)
        return make_bill(
            ctx, window, provider=f"{self.name}:{label}", kind=self.kind, price=price,
            monthly_usd={"subscription_usd": 0.0 if tier is None else tier.usd_per_month},
            storage_bytes=None if tier is None else float(tier.capacity),
            notes=tuple(notes), placeholder=self.placeholder and tier is not None,
            reuse=ctx.reuse)

    def bills(self, ctx: BillContext) -> list[Bill]:
        return [self.tier_bill(ctx, t) for t in self.sorted_tiers()]

    def sorted_tiers(self) -> list[Tier]:
        return sorted(self.tiers, key=lambda t: (t.capacity, t.usd_per_month))

    def storage_quotes(self, tokens: int, kv_bytes: float, days: float, *,
                       reads_per_month: float = 0.0) -> list[StorageQuote]:
        """The smallest tier holding the prefix; cached reads are free under this model."""
        fit = [t for t in self.sorted_tiers() if t.capacity >= kv_bytes]
        if not fit:
            biggest = self.sorted_tiers()[-1]
            return [StorageQuote(self.name, "", float("nan"),
                                 f"{format_bytes(kv_bytes)} exceeds the largest tier "
                                 f"({biggest.name}, {format_bytes(biggest.capacity)})",
                                 self.placeholder, status=self.status())]
        t = fit[0]
        return [StorageQuote(self.name, t.name, t.usd_per_month * days / 30.0,
                             f"smallest tier holding {format_bytes(kv_bytes)}: {t.name} "
                             f"({format_bytes(t.capacity)}, ${t.usd_per_month:,.2f}/month), "
                             "reads free", self.placeholder,
                             components_usd=(("storage_usd", t.usd_per_month * days / 30.0),),
                             status=self.status())]


def _build(s: SubscriptionSchema, name: str) -> SubscriptionBook:
    return SubscriptionBook(name=name, recompute_usd_per_mtok=s.recompute_usd_per_mtok,
                            policy=s.policy, tiers=tuple(s.tiers), source=s.source,
                            as_of=s.as_of, placeholder=s.placeholder)


PRICEBOOK_KINDS.register("subscription", Kind(SubscriptionSchema, _build,
                                              "capacity tiers at a flat monthly price, free reads"))
