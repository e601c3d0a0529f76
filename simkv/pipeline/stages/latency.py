"""Stage ``latency``: predicted TTFT per cache choice (analytic latency model and SimPy
serving simulation, simkv.latency) and prefix vs chunk TTFT with an unlimited remote bucket
(report sections 2 and 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simkv.pipeline.context import StageContext
from simkv.pipeline.stage import Stage, StageOutput, register_stage
from simkv.pipeline.stages.common import blend_recompute_share

GPU = "H100"
REPLICAS = 1
#: HBM prefix cache per replica, as a share of the workload's working set
HBM_SHARE = 0.05
#: cache choices: (label, tier serving the hits, bucket size as a share of the working set
#: (None = unlimited), whether an HBM prefix cache sits in front)
CHOICES = (("no cache", "hbm", 0.0, False),
           (f"HBM prefix cache ({HBM_SHARE:.0%} of working set)", "hbm", HBM_SHARE, False),
           ("HBM + CPU DRAM (25% of working set)", "cpu", 0.25, True),
           ("HBM + remote bucket (unlimited)", "remote", None, True))
#: where prefix vs chunk TTFT is predicted: a shared bucket on the remote tier, one GPU
TTFT_GPU, TTFT_TIER = "H100", "remote"


def _predicted(workloads, ws: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from simkv.cache import CacheConfig
    from simkv.latency.api import simulate_with_latency

    rows, dist = [], []
    for w in workloads:
        hbm = CacheConfig(capacity_bytes=int(ws[w.name] * HBM_SHARE))
        for label, tier, frac, front in CHOICES:
            cfg = (CacheConfig() if frac is None else CacheConfig(capacity_bytes=int(ws[w.name] * frac))
                   if frac > 0 else CacheConfig(capacity_blocks=0))
            res = simulate_with_latency(w.trace, cfg, gpu=GPU, tier=tier, replicas=REPLICAS,
                                        hbm_cache=hbm if front else None)
            s = res.summary_dict
            rows.append({"workload": w.name, "choice": label, "tier": tier, "gpu": GPU,
                         "replicas": REPLICAS, "loaded_tokens": s.get("loaded_tokens"),
                         "load_beats_recompute_share": s.get("load_beats_recompute_share"),
                         "queue_p90_s": s.get("queue_p90_s"),
                         "capacity_bytes": cfg.capacity_bytes,
                         "prefix_token_hit_ratio": s.get("prefix_token_hit_ratio"),
                         "ttft_p50_s": s.get("ttft_p50_s"), "ttft_p90_s": s.get("ttft_p90_s"),
                         "ttft_p99_s": s.get("ttft_p99_s")})
            q = np.linspace(0, 1, 101)
            dist.append(pd.DataFrame({"workload": w.name, "choice": label, "quantile": q,
                                      "ttft_s": np.quantile(res.records["ttft_s"].to_numpy(), q)}))
    return pd.DataFrame(rows), pd.concat(dist, ignore_index=True)


def _reuse_ttft(workloads, names: list[str]) -> pd.DataFrame:
    from simkv.cache import CacheConfig
    from simkv.latency.api import simulate_with_latency

    rows = []
    for w in workloads:
        if w.name not in names:
            continue
        r = {"workload": w.name}
        for mode in ("prefix", "chunk"):
            cfg = CacheConfig(reuse=mode, blend_recompute_share=blend_recompute_share()
                              if mode == "chunk" else 0.0)
            s = simulate_with_latency(w.trace, cfg, gpu=TTFT_GPU, tier=TTFT_TIER).summary_dict
            r[f"{mode}_ttft_p50_s"], r[f"{mode}_ttft_p90_s"] = s["ttft_p50_s"], s["ttft_p90_s"]
        rows.append(r)
    return pd.DataFrame(rows, columns=["workload", "prefix_ttft_p50_s", "prefix_ttft_p90_s",
                                       "chunk_ttft_p50_s", "chunk_ttft_p90_s"])


def run(ctx: StageContext) -> StageOutput:
    from simkv.latency.hardware import TIERS

    workloads = ctx.workloads()
    tables = {"reuse_ttft": _reuse_ttft(workloads, ctx.table("simulate", "reuse")["workload"].tolist())}
    if workloads:
        ws = dict(ctx.table("simulate", "workloads_summary")[["workload", "working_set_bytes"]]
                  .itertuples(index=False))
        tables["ttft_predicted"], tables["ttft_predicted_cdf"] = _predicted(workloads, ws)
    facts = {"gpu": GPU, "replicas": REPLICAS, "hbm_share": HBM_SHARE,
             "ttft_gpu": TTFT_GPU, "ttft_tier": TTFT_TIER,
             "tier_sources": {t: TIERS.get(t).source for t in ("cpu", "remote")}}
    return StageOutput(tables=tables, facts=facts)


register_stage(Stage("latency", "TTFT predictions", run, needs=("workloads", "simulate")))
