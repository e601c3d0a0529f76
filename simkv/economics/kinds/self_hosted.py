"""``self_hosted``: your own (or rented) GPUs, billed as the fleet the traffic needs.

Two bills per book:

- ``fleet``: replicas needed to serve the trace's busiest hour (or each hour, ``sizing:
  per_hour``) within the TTFT objective (``ttft_slo_p90_s``, default
  :data:`simkv.latency.slo.DEFAULT_TTFT_SLO_P90_S`), from the SimPy serving simulation, times
  ``gpus_per_replica`` x ``usd_per_gpu_hour`` over the month; the no-cache bill is the fleet
  sized without a cache, so what caching saves is the difference (GPUs).  See
  :mod:`simkv.economics.fleet`.
- ``marginal-gpu-seconds``: the GPU time of the missed tokens alone (``1 /
  prefill_tokens_per_s`` seconds of the replica per token), which is what a fleet already paid
  for would *not* save; kept as a second, clearly named line for teams that rent by the second.

The cache is your own (``cache_capacity`` of KV per replica, default unlimited, optional
``ttl``); its memory is not charged here (price it with a ``storage`` book).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from simkv.economics.bill import Bill, Unavailable, usd
from simkv.economics.book import PRICEBOOK_KINDS, BookSchema, Kind, PriceBook
from simkv.economics.context import BillContext
from simkv.economics.fleet import monthly_fleet_usd, size_fleet
from simkv.economics.kinds.common import Charges, Duration, Price, Size, make_bill
from simkv.economics.runs import View
from simkv.latency.api import prefill_tokens_per_s
from simkv.latency.slo import DEFAULT_TTFT_SLO_P90_S


class SelfHostedSchema(BookSchema):
    kind: Literal["self_hosted"]
    gpu: str = "H100"
    usd_per_gpu_hour: Price
    gpus_per_replica: int = Field(1, ge=1)
    prefill_tokens_per_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    cache_capacity: Size | None = None
    ttl: Duration | None = None
    policy: str = "lru"
    ttft_slo_p90_s: float = Field(DEFAULT_TTFT_SLO_P90_S, gt=0, allow_inf_nan=False)
    sizing: Literal["busiest_hour", "per_hour"] = "busiest_hour"
    max_replicas: int = Field(256, ge=1)


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
    ttft_slo_p90_s: float = DEFAULT_TTFT_SLO_P90_S
    sizing: str = "busiest_hour"
    max_replicas: int = 256
    kind: str = "self_hosted"
    source: str = ""
    as_of: str = ""
    placeholder: bool = False
    figures: tuple = ()
    supports_chunk: bool = True

    def usd_per_mtok(self, ctx: BillContext) -> tuple[float | None, str]:
        """Marginal $ per million missed tokens in GPU time (None when throughput is unknown)."""
        if self.prefill_tokens_per_s is not None:
            tps, how = self.prefill_tokens_per_s, "from the price book"
        else:
            tps, how = prefill_tokens_per_s(ctx.spec, self.gpu), f"from the latency model ({self.gpu})"
        if not tps > 0:
            return None, "the latency model gave no positive throughput"
        gpu_s_per_mtok = 1e6 / tps * self.gpus_per_replica
        return gpu_s_per_mtok / 3600.0 * self.usd_per_gpu_hour, f"{tps:,.0f} prefill tokens/s {how}"

    def cache_config(self, ctx: BillContext):
        return ctx.cache_config(capacity_bytes=self.cache_capacity, policy=self.policy,
                                ttl_s=self.ttl_s)

    def fleet_bill(self, ctx: BillContext) -> Bill | Unavailable:
        """Replicas with and without the cache within the TTFT objective, over the month."""
        cfg = self.cache_config(ctx)
        run = ctx.run(cfg)
        fleet = size_fleet(ctx.source, cfg, ctx.spec, gpu=self.gpu, slo_p90_s=self.ttft_slo_p90_s,
                           sizing=self.sizing, max_replicas=self.max_replicas,
                           tensor_parallel=self.gpus_per_replica)
        name = f"{self.name}:fleet"
        money = dict(gpus_per_replica=self.gpus_per_replica,
                     usd_per_gpu_hour=self.usd_per_gpu_hour, days_per_month=ctx.days_per_month)
        if not fleet.reachable:
            sides = [side for side, v in (("with the cache", fleet.replicas_cached),
                                          ("without it", fleet.replicas_no_cache)) if v is None]
            cached = ("" if fleet.replicas_cached is None else
                      f"; with the cache {fleet.replicas_cached:g} replica(s) meet it "
                      f"(${monthly_fleet_usd(fleet.replicas_cached, **money):,.2f}/month), so "
                      "caching is what makes the objective reachable")
            return Unavailable(name, self.kind, f"TTFT p90 <= {self.ttft_slo_p90_s:g} s is not "
                               f"reached within {self.max_replicas} replicas of {self.gpu} "
                               f"{' nor '.join(sides)} (a request's own prefill may exceed it)"
                               + cached)
        with_cache = monthly_fleet_usd(fleet.replicas_cached, **money)
        without = monthly_fleet_usd(fleet.replicas_no_cache, **money)

        def price(v: View) -> Charges:
            hit = v.run(run).hit_tokens
            return Charges(hit_tokens=hit, written_tokens=v.input_tokens - hit, request_usd={},
                           baseline_usd=np.zeros(v.n))

        return make_bill(
            ctx, ctx.window(run), provider=name, kind=self.kind, price=price,
            monthly_usd={"gpu_fleet_usd": with_cache}, baseline_monthly_usd=without,
            placeholder=self.placeholder, reuse=ctx.reuse,
            notes=(f"{fleet.sizing.replace('_', ' ')} sizing at TTFT p90 <= "
                   f"{self.ttft_slo_p90_s:g} s: {fleet.replicas_cached:g} replica(s) with the "
                   f"cache vs {fleet.replicas_no_cache:g} without, {self.gpus_per_replica} x "
                   f"{self.gpu} each at ${self.usd_per_gpu_hour:g}/GPU-hour, 24 h x "
                   f"{ctx.days_per_month:g} days; cache memory not charged here",),
            extra={"sizing": fleet.sizing, "ttft_slo_p90_s": self.ttft_slo_p90_s,
                   "replicas_with_cache": fleet.replicas_cached,
                   "replicas_without_cache": fleet.replicas_no_cache,
                   "gpus_saved": (fleet.replicas_no_cache - fleet.replicas_cached)
                   * self.gpus_per_replica,
                   "fleet_hours": [{"hour": h.hour, "weight": h.weight,
                                    "replicas_with_cache": h.replicas_cached,
                                    "replicas_without_cache": h.replicas_no_cache,
                                    "ttft_p90_with_cache_s": h.ttft_p90_cached_s,
                                    "ttft_p90_without_cache_s": h.ttft_p90_no_cache_s}
                                   for h in fleet.hours]})

    def marginal_bill(self, ctx: BillContext) -> Bill | Unavailable:
        """GPU-seconds of the missed tokens only (the old, marginal view), clearly named."""
        name = f"{self.name}:marginal-gpu-seconds"
        price, how = self.usd_per_mtok(ctx)
        if price is None:
            return Unavailable(name, self.kind, f"prefill throughput unknown: set "
                               f"prefill_tokens_per_s in the price book ({how})")
        run = ctx.run(self.cache_config(ctx))

        def charges(v: View) -> Charges:
            hit = v.run(run).hit_tokens
            missed = v.input_tokens - hit
            return Charges(hit_tokens=hit, written_tokens=missed,
                           request_usd={"gpu_recompute_usd": usd(missed, price)},
                           baseline_usd=usd(v.input_tokens, price))

        return make_bill(
            ctx, ctx.window(run), provider=name, kind=self.kind, price=charges, placeholder=self.placeholder, reuse=ctx.reuse,
            notes=(f"marginal GPU time of missed tokens only (not a fleet): {self.gpus_per_replica}"
                   f" x {self.gpu} at ${self.usd_per_gpu_hour:g}/h, {how}",))

    def bills(self, ctx: BillContext) -> list[Bill | Unavailable]:
        return [self.fleet_bill(ctx), self.marginal_bill(ctx)]


def _build(s: SelfHostedSchema, name: str) -> SelfHostedBook:
    return SelfHostedBook(name=name, gpu=s.gpu, usd_per_gpu_hour=s.usd_per_gpu_hour,
                          gpus_per_replica=s.gpus_per_replica,
                          prefill_tokens_per_s=s.prefill_tokens_per_s,
                          cache_capacity=s.cache_capacity, ttl_s=s.ttl, policy=s.policy,
                          ttft_slo_p90_s=s.ttft_slo_p90_s, sizing=s.sizing,
                          max_replicas=s.max_replicas, source=s.source, as_of=s.as_of,
                          placeholder=s.placeholder)


PRICEBOOK_KINDS.register("self_hosted", Kind(
    SelfHostedSchema, _build, "GPU fleet within a TTFT SLO (and marginal GPU-seconds)"))
