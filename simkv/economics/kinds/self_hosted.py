"""``self_hosted``: recompute priced in GPU time on your own (or rented) GPUs.

Semantics: a missed token costs ``1 / prefill_tokens_per_s`` seconds of ``gpus_per_replica``
GPUs at ``usd_per_gpu_hour``; the cache is your own (``cache_capacity`` of KV, default
unlimited, optional ``ttl``), its memory not charged here (price it with a ``storage`` book).
Without ``prefill_tokens_per_s`` the latency model's estimate is used when ``simkv.latency``
provides one; otherwise this book reports itself unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from simkv.economics.bill import Bill, Unavailable, usd
from simkv.economics.context import BillContext
from simkv.economics.kinds.common import Duration, Price, Size, make_bill
from simkv.economics.latency_hooks import prefill_tokens_per_s
from simkv.economics.pricebook import PRICEBOOK_KINDS, BookSchema, Kind, PriceBook


class SelfHostedSchema(BookSchema):
    kind: Literal["self_hosted"]
    gpu: str = "H100"
    usd_per_gpu_hour: Price
    gpus_per_replica: int = Field(1, ge=1)
    prefill_tokens_per_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    cache_capacity: Size | None = None
    ttl: Duration | None = None
    policy: str = "lru"


@dataclass(frozen=True)
class SelfHostedBook(PriceBook):
    name: str
    gpu: str
    usd_per_gpu_hour: float
    gpus_per_replica: int
    prefill_tokens_per_s: float | None
    cache_capacity: int | None
    ttl_s: float | None
    policy: str
    kind: str = "self_hosted"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    supports_chunk: bool = True

    def usd_per_mtok(self, ctx: BillContext) -> tuple[float | None, str]:
        if self.prefill_tokens_per_s is not None:
            tps, how = self.prefill_tokens_per_s, "from the price book"
        else:
            tps, how = prefill_tokens_per_s(ctx.spec, self.gpu)
        if tps is None:
            return None, how
        gpu_s_per_mtok = 1e6 / tps * self.gpus_per_replica
        return gpu_s_per_mtok / 3600.0 * self.usd_per_gpu_hour, f"{tps:,.0f} prefill tokens/s {how}"

    def bills(self, ctx: BillContext) -> list[Bill | Unavailable]:
        price, how = self.usd_per_mtok(ctx)
        if price is None:
            return [Unavailable(self.name, self.kind, f"prefill throughput unknown: set "
                                f"prefill_tokens_per_s in the price book ({how})")]
        run = ctx.run(ctx.cache_config(capacity_bytes=self.cache_capacity, policy=self.policy,
                                       ttl_s=self.ttl_s))
        inp = ctx.trace.input_tokens
        missed = inp - run.hit_tokens
        return [make_bill(
            ctx, ctx.window(run), provider=self.name, kind=self.kind, hit_tokens=run.hit_tokens,
            written_tokens=missed, request_usd={"gpu_recompute_usd": usd(missed, price)},
            baseline_usd=usd(inp, price), placeholder=self.placeholder, reuse=ctx.reuse,
            notes=(f"{self.gpus_per_replica} x {self.gpu} at ${self.usd_per_gpu_hour:g}/h, {how}; "
                   "cache memory not charged here",))]


def _build(s: SelfHostedSchema, name: str) -> SelfHostedBook:
    return SelfHostedBook(name=name, gpu=s.gpu, usd_per_gpu_hour=s.usd_per_gpu_hour,
                          gpus_per_replica=s.gpus_per_replica,
                          prefill_tokens_per_s=s.prefill_tokens_per_s,
                          cache_capacity=s.cache_capacity, ttl_s=s.ttl, policy=s.policy,
                          source=s.source, as_of=s.as_of, placeholder=s.placeholder)


PRICEBOOK_KINDS.register("self_hosted", Kind(SelfHostedSchema, _build,
                                             "GPU $/hour and prefill throughput"))
