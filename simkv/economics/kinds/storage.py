"""``storage``: KV kept in your own store, priced per GiB-month plus requests and egress.

Semantics per medium (DRAM, NVMe, object store, Redis...): stored bytes cost
``usd_per_gib_month``; each block written is one PUT and each block read one GET
(``usd_per_1k_put`` / ``usd_per_1k_get``); bytes read cost ``usd_per_gib_egress``; misses are
recomputed at ``recompute_usd_per_mtok``.  KV bytes are divided by ``compression_ratio``.
With a ``capacity`` the store is provisioned (billed on capacity, evicting by ``policy``);
without one, entries live ``ttl`` after their last use and the bill is on the average stored
bytes.  GiB = 2^30 bytes (as cloud storage bills count them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from simkv.economics.bill import Bill, usd
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import Duration, Price, Size, make_bill
from simkv.economics.pricebook import (
    PLACEHOLDER_NOTE,
    PRICEBOOK_KINDS,
    BookSchema,
    Kind,
    PriceBook,
    StorageQuote,
)
from simkv.units import format_bytes
from simkv.validate import UserModel

GIB = float(1 << 30)


class Medium(UserModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    usd_per_gib_month: Price
    usd_per_1k_put: Price = 0.0
    usd_per_1k_get: Price = 0.0
    usd_per_gib_egress: Price = 0.0
    source: str = ""
    placeholder: bool = False


class StorageSchema(BookSchema):
    kind: Literal["storage"]
    recompute_usd_per_mtok: Price
    compression_ratio: float = Field(1.0, gt=0, allow_inf_nan=False)
    capacity: Size | None = None
    ttl: Duration | None = None
    ttl_mode: Literal["refresh_on_hit", "from_write"] = "refresh_on_hit"
    policy: str = "lru"
    media: dict[str, Medium] = Field(min_length=1)

    @model_validator(mode="after")
    def _bounded(self):
        if self.capacity is None and self.ttl is None:
            raise ValueError("give a capacity (provisioned store) or a ttl (pay for what is "
                             "stored); with neither the store grows without bound")
        return self


@dataclass(frozen=True)
class StorageBook(PriceBook):
    name: str
    recompute_usd_per_mtok: float
    compression_ratio: float
    capacity_bytes: int | None
    ttl_s: float | None
    ttl_mode: str
    policy: str
    media: tuple[tuple[str, Medium], ...]
    kind: str = "storage"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    supports_chunk: bool = True

    def medium(self, name: str) -> Medium:
        for k, m in self.media:
            if k == name:
                return m
        from simkv.errors import InputError

        raise InputError(f"unknown medium {name!r} (media: {', '.join(k for k, _ in self.media)})",
                         where="medium")

    def bills(self, ctx: BillContext) -> list[Bill]:
        inp = ctx.trace.input_tokens
        if self.capacity_bytes is not None:
            raw_cap = int(self.capacity_bytes * self.compression_ratio)
            run = ctx.run(ctx.cache_config(capacity_bytes=raw_cap, policy=self.policy,
                                           ttl_s=self.ttl_s, ttl_mode=self.ttl_mode))
            window = ctx.window(run)
            stored = float(self.capacity_bytes)
            basis = f"provisioned {format_bytes(stored)}"
        else:
            run = ctx.run(ctx.cache_config(ttl_s=self.ttl_s, ttl_mode=self.ttl_mode))
            window = ctx.window(run)
            token_s = ctx.stored_token_seconds(run, window)
            stored = token_s / window.length_s * ctx.spec.kv_bytes_per_token / self.compression_ratio
            basis = f"average {format_bytes(stored)} stored (entries live {self.ttl_s:g} s idle)"
        hit = run.hit_tokens
        missed = inp - hit
        puts = run.blocks - run.touched_cached_blocks
        gets = run.hit_blocks
        read_gib = hit * ctx.spec.kv_bytes_per_token / self.compression_ratio / GIB
        out = []
        for mname, m in self.media:
            notes = [f"{basis}; 1 PUT per block written, 1 GET per block read; "
                     f"compression {self.compression_ratio:g}x"]
            if m.placeholder:
                notes.append(PLACEHOLDER_NOTE)
            out.append(make_bill(
                ctx, window, provider=f"{self.name}:{mname}", kind=self.kind, hit_tokens=hit,
                written_tokens=np.where(puts > 0, missed, 0),
                request_usd={"recompute_usd": usd(missed, self.recompute_usd_per_mtok),
                             "requests_usd": (puts * m.usd_per_1k_put + gets * m.usd_per_1k_get) / 1000.0,
                             "egress_usd": read_gib * m.usd_per_gib_egress},
                baseline_usd=usd(inp, self.recompute_usd_per_mtok),
                monthly_usd={"storage_usd": stored / GIB * m.usd_per_gib_month},
                storage_bytes=stored, notes=tuple(notes),
                placeholder=self.placeholder or m.placeholder, reuse=ctx.reuse))
        return out

    def storage_quotes(self, tokens: int, kv_bytes: float, days: float) -> list[StorageQuote]:
        stored = kv_bytes / self.compression_ratio
        return [StorageQuote(self.name, k, stored / GIB * m.usd_per_gib_month * days / 30.0,
                             f"{format_bytes(stored)} x ${m.usd_per_gib_month:g}/GiB-month "
                             "(request and egress charges excluded)",
                             self.placeholder or m.placeholder)
                for k, m in self.media]


def _build(s: StorageSchema, name: str) -> StorageBook:
    return StorageBook(name=name, recompute_usd_per_mtok=s.recompute_usd_per_mtok,
                       compression_ratio=s.compression_ratio, capacity_bytes=s.capacity,
                       ttl_s=s.ttl, ttl_mode=s.ttl_mode, policy=s.policy,
                       media=tuple(s.media.items()), source=s.source, as_of=s.as_of,
                       placeholder=s.placeholder)


PRICEBOOK_KINDS.register("storage", Kind(StorageSchema, _build,
                                         "$/GiB-month per medium, PUT/GET, egress, compression"))
