"""``anthropic``: explicit prompt caching with cache breakpoints.

Semantics: a TTL (5 min or 1 h) refreshed on every hit; writing a prefix costs a multiple of
the base input price (1.25x for 5 min, 2x for 1 h), reading it 0.1x; prompts below a minimum
length are not cached.  The application is assumed to put one breakpoint at the end of every
prompt (plus one at each change of block tag, e.g. system -> tools -> document, when the trace
has tags), so everything not read is written.  With ``breakpoints: prompt_end`` a hit can only
end where an earlier request put a breakpoint; ``breakpoints: blocks`` takes the engine's
block-granular hit as is (an application that puts a breakpoint exactly where shared content
ends: an upper bound).  ``auto`` (default) uses ``prompt_end`` when the trace has block tags
(so breakpoints also sit at tag changes) and ``blocks`` when it has none.
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
    Price,
    TokenCount,
    hits_and_writes,
    make_bill,
)
from simkv.economics.runs import CacheRun, RunChunk, View
from simkv.idmap import IdMap
from simkv.trace.model import Trace
from simkv.validate import UserModel


class TtlOption(UserModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str
    ttl: Duration
    write_multiplier: Price


class AnthropicSchema(BookSchema):
    kind: Literal["anthropic"]
    model: str = ""
    input_usd_per_mtok: Price
    read_multiplier: Price = 0.1
    min_cacheable_tokens: TokenCount = 1024
    breakpoints: Literal["auto", "prompt_end", "blocks"] = "auto"
    ttl_options: list[TtlOption] = Field(min_length=1)


class Breakpoints:
    """Hit tokens cut back to the last position where an earlier request had a breakpoint.

    A block position qualifies if, in some earlier request, the same chained block ended the
    prompt or ended a run of one tag.  The hit is the longest qualifying prefix within the
    engine's block-granular hit.

    Called on every chunk of requests in order, carrying per block (dense id) the first
    request that put a breakpoint on it: a request only asks whether some *earlier* request
    did, and every earlier request lies in this chunk or an earlier one, so the answer is the
    whole trace's.
    """

    def __init__(self) -> None:
        self.idmap = IdMap()
        self.first_bp_req = np.zeros(0, dtype=np.int64)

    def __call__(self, c: Trace, a: int, run: RunChunk) -> np.ndarray:
        """Breakpoint-bounded hit tokens of chunk ``c`` (its first request is the trace's ``a``)."""
        if c.n_block_accesses == 0:
            return np.zeros(c.n_requests, dtype=np.int64)
        ids = self.idmap.map(c.block_hashes)
        if self.idmap.n_ids > len(self.first_bp_req):
            grown = np.full(max(self.idmap.n_ids, 2 * len(self.first_bp_req)),
                            np.iinfo(np.int64).max)
            grown[:len(self.first_bp_req)] = self.first_bp_req
            self.first_bp_req = grown
        lead_blocks = -(-run.hit_tokens // c.block_tokens)  # blocks covered by the engine's hit
        hit = _chunk_breakpoints(c, a, ids, self.first_bp_req, run.eligible, lead_blocks)
        return np.minimum(hit, run.hit_tokens)


def breakpoint_hits(ctx: BillContext, run: CacheRun) -> np.ndarray:
    """:class:`Breakpoints` over the whole trace at once (tests, small traces)."""
    bp = Breakpoints()
    parts = [bp(v.trace, v.a, v.run(run)) for v in ctx.views(blocks=True)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _chunk_breakpoints(c: Trace, a: int, ids: np.ndarray, first_bp_req: np.ndarray,
                       eligible: np.ndarray, lead_blocks: np.ndarray) -> np.ndarray:
    """Breakpoint-bounded hit tokens of chunk ``c`` (its first request is the trace's ``a``;
    ``eligible`` and ``lead_blocks`` are the chunk's)."""
    local = c.request_of_block()
    req = local + a
    is_bp = np.zeros(len(ids), dtype=bool)
    ends = c.block_offsets[1:] - 1
    is_bp[ends[c.block_offsets[1:] > c.block_offsets[:-1]]] = True
    if c.block_tags is not None and len(ids) > 1:
        change = np.zeros(len(ids), dtype=bool)
        change[:-1] = (c.block_tags[1:] != c.block_tags[:-1]) & (local[1:] == local[:-1])
        is_bp |= change
    np.minimum.at(first_bp_req, ids[is_bp], req[is_bp])
    qualifies = (first_bp_req[ids] < req) & eligible[local]
    pos = np.arange(len(ids)) - c.block_offsets[local]  # 0-based position in the request
    within = pos < lead_blocks[local]
    cand = np.where(qualifies & within, pos + 1, 0)
    best = np.zeros(c.n_requests, dtype=np.int64)
    np.maximum.at(best, local, cand)
    cum = np.cumsum(c.block_token_counts())
    start_cum = np.concatenate(([0], cum))[c.block_offsets[:-1]]
    idx = c.block_offsets[:-1] + best - 1
    return np.where(best > 0, cum[np.maximum(idx, 0)] - start_cum, 0)


@dataclass(frozen=True)
class AnthropicBook(PriceBook):
    name: str
    input_usd_per_mtok: float
    read_multiplier: float
    min_cacheable_tokens: int
    breakpoints: str
    ttl_options: tuple[TtlOption, ...]
    model: str = ""
    kind: str = "anthropic"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    figures: tuple = ()

    def bills(self, ctx: BillContext) -> list[Bill]:
        out = []
        mode = self.breakpoints
        if mode == "auto":
            mode = "prompt_end" if ctx.facts.has_block_tags else "blocks"
        for opt in self.ttl_options:
            cfg = CacheConfig(ttl_s=opt.ttl, ttl_mode="refresh_on_hit")
            run = ctx.run(cfg, self.min_cacheable_tokens)
            out.append(make_bill(
                ctx, ctx.window(run), provider=f"{self.name}:{opt.label}", kind=self.kind,
                price=self._pricer(run, opt, Breakpoints() if mode == "prompt_end" else None),
                blocks=mode == "prompt_end", placeholder=self.placeholder,
                notes=(f"TTL {opt.ttl:g} s refreshed on each hit; writes {opt.write_multiplier:g}x, "
                       f"reads {self.read_multiplier:g}x; prompts < {self.min_cacheable_tokens} "
                       f"tokens not cached; " + (
                           "hits end at earlier breakpoints (prompt ends and tag changes)"
                           if mode == "prompt_end" else
                           "breakpoints assumed where shared content ends (no block tags: "
                           "an upper bound)"),)))
        return out

    def _pricer(self, run: CacheRun, opt: TtlOption, bp: Breakpoints | None):
        """Each chunk's charges under one TTL option (``bp``: hits end at breakpoints)."""
        p = self.input_usd_per_mtok

        def price(v: View) -> Charges:
            r = v.run(run)
            hit = r.hit_tokens if bp is None else bp(v.trace, v.a, r)
            hit = np.where(hit >= self.min_cacheable_tokens, hit, 0)
            read, written, bypass = hits_and_writes(r, v.input_tokens, hit)
            return Charges(hit_tokens=read, written_tokens=written,
                           request_usd={"input_usd": usd(bypass, p),
                                        "cache_write_usd": usd(written, p * opt.write_multiplier),
                                        "cache_read_usd": usd(read, p * self.read_multiplier)},
                           baseline_usd=usd(v.input_tokens, p))

        return price


def _build(s: AnthropicSchema, name: str) -> AnthropicBook:
    return AnthropicBook(name=name, input_usd_per_mtok=s.input_usd_per_mtok,
                         read_multiplier=s.read_multiplier,
                         min_cacheable_tokens=s.min_cacheable_tokens, breakpoints=s.breakpoints,
                         ttl_options=tuple(s.ttl_options), model=s.model, source=s.source,
                         as_of=s.as_of, placeholder=s.placeholder)


PRICEBOOK_KINDS.register("anthropic", Kind(AnthropicSchema, _build,
                                           "TTL refreshed on hit, write premium, 0.1x reads"))
