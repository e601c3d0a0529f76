"""Stage ``latency``: predicted TTFT per cache choice (analytic latency model and SimPy
serving simulation, simkv.latency) and prefix vs chunk TTFT with an unlimited remote bucket
(report sections 2 and 6).  Every TTFT is predicted at the fewest replicas meeting the run's TTFT
objective (``--ttft-slo-p90-s``, default ``DEFAULT_TTFT_SLO_P90_S``; simkv.latency.slo.sized_ttft),
or where the search finds the load unservable, with by how much (``over_slo_factor``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage
from simkv.pipeline.stages.common import blend_recompute_share

GPU = "H100"
#: routing when replicas are sized: prefix-aware with a cache, by load without one
ROUTING_CACHED, ROUTING_NO_CACHE = "prefix_aware", "least_loaded"
#: HBM prefix cache per replica, as a share of the workload's working set
HBM_SHARE = 0.05
#: cache choices: (label, tier serving the hits, bucket size as a share of the working set
#: (None = unlimited), whether an HBM prefix cache sits in front)
CHOICES = (("no cache", "hbm", 0.0, False),
           (f"HBM prefix cache ({HBM_SHARE:.0%} of working set)", "hbm", HBM_SHARE, False),
           ("HBM + CPU DRAM (25% of working set)", "cpu", 0.25, True),
           ("HBM + remote bucket (unlimited)", "remote", None, True))
#: where prefix vs chunk TTFT is predicted: a shared bucket on the remote tier
TTFT_GPU, TTFT_TIER = "H100", "remote"


def _sized_cols(s, prefix: str = "") -> dict:
    """The replica count chosen, whether it meets the objective and by how much it misses."""
    return {f"{prefix}replicas": s.replicas, f"{prefix}meets_slo": bool(s.meets),
            f"{prefix}over_slo_factor": float(s.over_slo_factor)}


def _predicted(workloads, ws: dict[str, int], slo_s: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    from simkv.cache import CacheConfig
    from simkv.latency.slo import sized_ttft

    rows, dist = [], []
    for w in workloads:
        hbm = CacheConfig(capacity_bytes=int(ws[w.name] * HBM_SHARE))
        for label, tier, frac, front in CHOICES:
            cfg = (CacheConfig() if frac is None else CacheConfig(capacity_bytes=int(ws[w.name] * frac))
                   if frac > 0 else CacheConfig(capacity_blocks=0))
            routing = ROUTING_NO_CACHE if frac == 0 else ROUTING_CACHED
            sz = sized_ttft(w.chunks, cfg, slo_p90_s=slo_s, gpu=GPU, tier=tier, routing=routing,
                            hbm_cache=hbm if front else None)
            s = sz.summary
            rows.append({"workload": w.name, "choice": label, "tier": tier, "gpu": GPU,
                         "routing": routing, "slo_p90_s": slo_s, **_sized_cols(sz),
                         "loaded_tokens": s.get("loaded_tokens"),
                         "load_beats_recompute_share": s.get("load_beats_recompute_share"),
                         "queue_p90_s": s.get("queue_p90_s"),
                         "capacity_bytes": cfg.capacity_bytes,
                         "prefix_token_hit_ratio": s.get("prefix_token_hit_ratio"),
                         "ttft_p50_s": sz.ttft_p50_s, "ttft_p90_s": sz.ttft_p90_s,
                         "ttft_p99_s": sz.ttft_p99_s})
            q = np.linspace(0, 1, 101)
            dist.append(pd.DataFrame({"workload": w.name, "choice": label, "quantile": q,
                                      "ttft_s": np.quantile(sz.records["ttft_s"].to_numpy(), q)}))
    return pd.DataFrame(rows), pd.concat(dist, ignore_index=True)


REUSE_COLUMNS = ["workload", "slo_p90_s"] + [
    f"{m}_{c}" for m in ("prefix", "chunk")
    for c in ("ttft_p50_s", "ttft_p90_s", "replicas", "meets_slo", "over_slo_factor")]


def _reuse_ttft(workloads, names: list[str], slo_s: float) -> pd.DataFrame:
    from simkv.cache import CacheConfig
    from simkv.latency.slo import sized_ttft

    rows = []
    for w in workloads:
        if w.name not in names:
            continue
        r = {"workload": w.name, "slo_p90_s": slo_s}
        for mode in ("prefix", "chunk"):
            cfg = CacheConfig(reuse=mode, blend_recompute_share=blend_recompute_share()
                              if mode == "chunk" else 0.0)
            sz = sized_ttft(w.chunks, cfg, slo_p90_s=slo_s, gpu=TTFT_GPU, tier=TTFT_TIER,
                            routing=ROUTING_CACHED)
            r[f"{mode}_ttft_p50_s"], r[f"{mode}_ttft_p90_s"] = sz.ttft_p50_s, sz.ttft_p90_s
            r.update(_sized_cols(sz, f"{mode}_"))
        rows.append(r)
    return pd.DataFrame(rows, columns=REUSE_COLUMNS)


def run(ctx: StageContext) -> StageOutput:
    from simkv.latency.gpu_profile import profile_status
    from simkv.latency.hardware import TIERS
    from simkv.latency.slo import report_slo_s

    slo = report_slo_s(ctx.options)
    workloads = ctx.workloads()
    reuse = ctx.table("simulate", "reuse")["workload"].tolist()
    tables = {"reuse_ttft": _reuse_ttft(workloads, reuse, slo)}
    if workloads:
        ws = dict(ctx.table("simulate", "workloads_summary")[["workload", "working_set_bytes"]]
                  .itertuples(index=False))
        tables["ttft_predicted"], tables["ttft_predicted_cdf"] = _predicted(workloads, ws, slo)
    facts = {"gpu": GPU, "slo_p90_s": slo, "replicas": "sized to the TTFT objective",
             "hbm_share": HBM_SHARE, "gpu_profile": profile_status(),
             "ttft_gpu": TTFT_GPU, "ttft_tier": TTFT_TIER,
             "tier_sources": {t: TIERS.get(t).source for t in ("cpu", "remote")}}
    return StageOutput(tables=tables, facts=facts)


register_stage(Stage("latency", "TTFT predictions", run, needs=("workloads", "simulate"),
                     options=("ttft_slo_p90_s",)))
