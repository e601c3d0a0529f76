"""``storage``: KV kept in your own store, with every fee a store charges for moving bytes.

Semantics per medium (DRAM, NVMe, object store, Redis...): stored bytes cost
``usd_per_gib_month``; each block written is one PUT and each block read one GET
(``usd_per_1k_put`` / ``usd_per_1k_get``); every byte written costs ``usd_per_gib_written``
(an upload fee) and every byte read ``usd_per_gib_read`` (a retrieval fee) plus
``usd_per_gib_egress`` (transfer out); misses are recomputed at ``recompute_usd_per_mtok``.
A hit's KV loads at the medium's ``read_gib_per_s`` before prefill of the rest can start; the
bill states that time.  KV bytes are divided by ``compression_ratio``.  With a ``capacity``
the store is provisioned (billed on capacity, evicting by ``policy``); without one, entries
live ``ttl`` after their last use and the bill is on the average stored bytes.  GiB = 2^30
bytes (as AWS's own S3 Express examples count a GB).
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
    FigureSource,
    Kind,
    PriceBook,
    StorageQuote,
    status_of,
)
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import Charges, Duration, Price, Size, make_bill
from simkv.economics.runs import CacheRun, View
from simkv.economics.sums import ExactSum
from simkv.units import format_bytes
from simkv.validate import UserModel

GIB = float(1 << 30)
#: Tokens per stored object when quoting one prefix (LMCache's default chunk, docs/facts.md).
QUOTE_OBJECT_TOKENS = 256


class Medium(UserModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    usd_per_gib_month: Price
    usd_per_1k_put: Price = 0.0
    usd_per_1k_get: Price = 0.0
    usd_per_gib_written: Price = 0.0
    usd_per_gib_read: Price = 0.0
    usd_per_gib_egress: Price = 0.0
    read_gib_per_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    source: str = ""
    placeholder: bool = False
    figures: dict[str, FigureSource] = {}


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


def medium_charges(m: Medium, *, written_bytes, read_bytes, puts, gets) -> dict:
    """Per-request dollars a medium charges for moving bytes (arrays or scalars)."""
    return {
        "requests_usd": (np.asarray(puts) * m.usd_per_1k_put
                         + np.asarray(gets) * m.usd_per_1k_get) / 1000.0,
        "write_usd": np.asarray(written_bytes) / GIB * m.usd_per_gib_written,
        "read_usd": np.asarray(read_bytes) / GIB * m.usd_per_gib_read,
        "egress_usd": np.asarray(read_bytes) / GIB * m.usd_per_gib_egress,
    }


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
    figures: tuple = ()
    supports_chunk: bool = True

    def medium(self, name: str) -> Medium:
        for k, m in self.media:
            if k == name:
                return m
        from simkv.errors import InputError

        raise InputError(f"unknown medium {name!r} (media: {', '.join(k for k, _ in self.media)})",
                         where="medium")

    def status(self, variant: str | None = None) -> str:
        media = [m for k, m in self.media if variant in (None, k)]
        figs = [f for _, f in self.figures] + [f for m in media for f in m.figures.values()]
        return status_of(self.placeholder or any(m.placeholder for m in media), figs)

    def _run(self, ctx: BillContext):
        if self.capacity_bytes is not None:
            raw_cap = int(self.capacity_bytes * self.compression_ratio)
            run = ctx.run(ctx.cache_config(capacity_bytes=raw_cap, policy=self.policy,
                                           ttl_s=self.ttl_s, ttl_mode=self.ttl_mode))
            window = ctx.window(run)
            stored = float(self.capacity_bytes)
            return run, window, stored, f"provisioned {format_bytes(stored)}"
        run = ctx.run(ctx.cache_config(ttl_s=self.ttl_s, ttl_mode=self.ttl_mode))
        window = ctx.window(run)
        token_s = ctx.stored_token_seconds(run, window)
        stored = token_s / window.length_s * ctx.spec.kv_bytes_per_token / self.compression_ratio
        return run, window, stored, (f"average {format_bytes(stored)} stored (entries live "
                                     f"{self.ttl_s:g} s idle)")

    def bills(self, ctx: BillContext) -> list[Bill]:
        run, window, stored, basis = self._run(ctx)
        per_token = ctx.spec.kv_bytes_per_token / self.compression_ratio
        mean_read = _mean_read_bytes(ctx, run, per_token)
        out = []
        for mname, m in self.media:
            load = ("" if m.read_gib_per_s is None else
                    f"; a hit loads at {m.read_gib_per_s:g} GiB/s (mean "
                    f"{mean_read / GIB / m.read_gib_per_s:.3g} s per hit)")
            notes = [f"{basis}; 1 PUT per block written, 1 GET per block read; every byte read "
                     f"and written billed; compression {self.compression_ratio:g}x{load}"]
            if m.placeholder:
                notes.append(PLACEHOLDER_NOTE)
            out.append(make_bill(
                ctx, window, provider=f"{self.name}:{mname}", kind=self.kind,
                price=lambda v, m=m: self._price(v, run, m, per_token),
                monthly_usd={"storage_usd": stored / GIB * m.usd_per_gib_month},
                storage_bytes=stored, notes=tuple(notes),
                placeholder=self.placeholder or m.placeholder, reuse=ctx.reuse,
                extra={"read_gib_per_s": m.read_gib_per_s,
                       "mean_load_s_per_hit": (None if m.read_gib_per_s is None else
                                               mean_read / GIB / m.read_gib_per_s)}))
        return out

    def _price(self, v: View, run: CacheRun, m: Medium, per_token: float) -> Charges:
        """One chunk's charges on medium ``m``: recompute of misses, and the medium's fees
        for the blocks written (PUTs) and read (GETs) and their bytes."""
        r = v.run(run)
        inp, hit = v.input_tokens, r.hit_tokens
        missed = inp - hit
        puts = r.blocks - r.touched_cached_blocks
        written = np.where(puts > 0, missed, 0)
        return Charges(hit_tokens=hit, written_tokens=written,
                       request_usd={"recompute_usd": usd(missed, self.recompute_usd_per_mtok),
                                    **medium_charges(m, written_bytes=written * per_token,
                                                     read_bytes=hit * per_token, puts=puts,
                                                     gets=r.hit_blocks)},
                       baseline_usd=usd(inp, self.recompute_usd_per_mtok))

    def storage_quotes(self, tokens: int, kv_bytes: float, days: float, *,
                       reads_per_month: float = 0.0) -> list[StorageQuote]:
        """Store the prefix all month (written once), read it back ``reads_per_month`` times;
        one object per ``QUOTE_OBJECT_TOKENS`` tokens for the request fees."""
        stored = kv_bytes / self.compression_ratio
        objects = -(-int(tokens) // QUOTE_OBJECT_TOKENS)
        out = []
        for k, m in self.media:
            moves = medium_charges(m, written_bytes=stored, read_bytes=stored * reads_per_month,
                                   puts=objects, gets=objects * reads_per_month)
            comps = {"storage_usd": stored / GIB * m.usd_per_gib_month * days / 30.0,
                     **{n: float(v) for n, v in moves.items()}}
            load_s = None if m.read_gib_per_s is None else stored / GIB / m.read_gib_per_s
            basis = (f"{format_bytes(stored)} x ${m.usd_per_gib_month:g}/GiB-month, written once, "
                     f"read {reads_per_month:,.0f} times at ${m.usd_per_gib_read:g}/GiB retrieval"
                     f" + ${m.usd_per_gib_egress:g}/GiB egress, {objects} objects per read")
            out.append(StorageQuote(self.name, k, float(sum(comps.values())), basis,
                                    self.placeholder or m.placeholder,
                                    components_usd=tuple(comps.items()), load_s=load_s,
                                    status=self.status(k)))
        return out


def _mean_read_bytes(ctx: BillContext, run: CacheRun, per_token: float) -> float:
    """Mean KV bytes a hit reads, over every request of the trace that hits (one pass; the
    correctly rounded sum over the count, so the chunking cannot change it)."""
    total, n = ExactSum(), 0
    for v in ctx.views():
        read_bytes = v.run(run).hit_tokens * per_token
        hits = read_bytes[read_bytes > 0]
        total.add(hits)
        n += len(hits)
    return total.value / n if n else 0.0


def _build(s: StorageSchema, name: str) -> StorageBook:
    return StorageBook(name=name, recompute_usd_per_mtok=s.recompute_usd_per_mtok,
                       compression_ratio=s.compression_ratio, capacity_bytes=s.capacity,
                       ttl_s=s.ttl, ttl_mode=s.ttl_mode, policy=s.policy,
                       media=tuple(s.media.items()), source=s.source, as_of=s.as_of,
                       placeholder=s.placeholder)


PRICEBOOK_KINDS.register("storage", Kind(
    StorageSchema, _build,
    "$/GiB-month per medium, PUT/GET, per-GiB upload/retrieval/egress, read bandwidth"))
