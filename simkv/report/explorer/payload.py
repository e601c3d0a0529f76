"""The data the page's explorer computes from, and the decision JSON for tools.

Why a schema: tools read ``data/decision.json`` and the page reads the same structure embedded in
``index.html``; ``schema_version`` changes whenever a field changes meaning.  Only aggregates go
in (hit ratios per grid point, token volumes, prices, TTFT percentiles): no block hashes, no
paths of the user's machine (workload names are the trace file's stem, never its folder).

Payload (``kind: simkv.explorer``)::

    schema_version, kind, days_per_month, slo_ttft_p90_s, traffic [1, 2, 5], ttls_s [.., null],
    books:     [{name, recompute_usd_per_mtok, placeholder, source, as_of,
                 tiers: [{name, capacity_bytes, usd_per_month}]}]
    workloads: [{id, workload, model, capacities_bytes [.., null = unlimited], block_bytes,
                 models: {catalogue model: block_bytes} (the same trace on another model:
                          capacity x its block bytes / block_bytes hits the same),
                 runs: {"1": {input_tokens_per_month, working_set_bytes,
                              hit: [[ratio per ttl] per capacity],
                              ttft: [{setup, capacity_bytes, hit_rate, replicas, meets,
                                      ttft_p50_s, ttft_p90_s, gpu}]}, "2": ..., "5": ...},
                 alternatives: [{provider, kind, hit_rate, total_usd, no_cache_usd, savings_usd,
                                 placeholder}]}]   (every price book's own bill at 1x, data/bills.csv)
    cards:     [card, ...]   (simkv.report.explorer.card.build_card)
    measured:  [{label, source, predicted_prefix_hit_ratio, measured_prefix_hit_ratio,
                 predicted_ttft_p50_s, measured_ttft_p50_s}]   (engine replays, when given)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pandas as pd

from simkv.report.explorer.frames import TRAFFIC, ExplorerTables

SCHEMA_VERSION = 1
#: the page must stay light: a payload above this is a bug (aggregates only)
MAX_PAYLOAD_BYTES = 2_000_000


def _f(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _alternatives(bills: pd.DataFrame | None, workload: str, model: str) -> list[dict]:
    if bills is None or bills.empty:
        return []
    b = bills[(bills["workload"] == workload) & (bills["model"] == model) & bills["available"]
              & bills["total_usd"].notna()].sort_values("total_usd")
    return [{"provider": str(r.provider), "kind": str(r.kind), "hit_rate": _f(r.hit_rate),
             "total_usd": _f(r.total_usd), "no_cache_usd": _f(r.no_cache_usd),
             "savings_usd": _f(r.savings_usd), "placeholder": bool(r.placeholder)}
            for r in b.itertuples()]


def _workload(t: ExplorerTables, workload: str, model: str, ttls: list[float | None],
              model_block_bytes: dict[int, dict[str, int]]) -> dict:
    g = t.grid[(t.grid["workload"] == workload) & (t.grid["model"] == model)]
    caps = sorted(g["capacity_bytes"].dropna().unique().tolist())
    caps_all: list[float | None] = [float(c) for c in caps] + [None]
    runs = {}
    for traffic in TRAFFIC:
        gt = g[g["traffic"] == traffic]
        if gt.empty:
            continue
        hit = []
        for c in caps_all:
            gc = gt[gt["capacity_bytes"].isna()] if c is None else gt[gt["capacity_bytes"] == c]
            row = []
            for ttl in ttls:
                cell = gc[gc["ttl_s"].isna()] if ttl is None else gc[gc["ttl_s"] == ttl]
                row.append(round(float(cell["prefix_token_hit_ratio"].iloc[0]), 12))
            hit.append(row)
        v = t.volume[(t.volume["workload"] == workload) & (t.volume["model"] == model)
                     & (t.volume["traffic"] == traffic)].iloc[0]
        x = t.ttft[(t.ttft["workload"] == workload) & (t.ttft["model"] == model)
                   & (t.ttft["traffic"] == traffic)]
        runs[str(traffic)] = {
            "input_tokens_per_month": float(v["input_tokens_per_month"]),
            "working_set_bytes": float(v["working_set_bytes"]), "hit": hit,
            "ttft": [{"setup": r.setup, "capacity_bytes": _f(r.capacity_bytes),
                      "hit_rate": float(r.prefix_token_hit_ratio), "replicas": int(r.replicas),
                      "meets": bool(r.meets), "ttft_p50_s": float(r.ttft_p50_s),
                      "ttft_p90_s": float(r.ttft_p90_s), "gpu": r.gpu} for r in x.itertuples()]}
    v1 = t.volume[(t.volume["workload"] == workload) & (t.volume["model"] == model)].iloc[0]
    models = dict(model_block_bytes.get(int(v1["block_tokens"]), {}))
    models[model] = int(v1["block_bytes"])
    return {"id": f"{workload} | {model}", "workload": workload, "model": model,
            "capacities_bytes": caps_all, "block_bytes": int(v1["block_bytes"]),
            "models": dict(sorted(models.items())), "runs": runs}


def build_payload(t: ExplorerTables, books: Sequence[dict], cards: Sequence[dict], *,
                  days_per_month: float, slo_p90_s: float, bills: pd.DataFrame | None = None,
                  measured: Sequence[dict] = (),
                  model_block_bytes: dict[int, dict[str, int]] | None = None) -> dict:
    """The explorer payload (see the module docstring); ``books`` are already plain dicts,
    ``bills`` the bills section's table (workload, model, provider, kind, available, hit_rate,
    total_usd, no_cache_usd, savings_usd, placeholder), when it ran."""
    ttls_raw = t.grid["ttl_s"].drop_duplicates().tolist()
    ttls: list[float | None] = sorted(float(x) for x in ttls_raw if not pd.isna(x))
    if any(pd.isna(x) for x in ttls_raw):
        ttls.append(None)
    pairs = list(dict.fromkeys(zip(t.grid["workload"], t.grid["model"], strict=True)))
    return {"schema_version": SCHEMA_VERSION, "kind": "simkv.explorer",
            "days_per_month": days_per_month, "slo_ttft_p90_s": slo_p90_s,
            "traffic": list(TRAFFIC), "ttls_s": ttls, "books": list(books),
            "workloads": [{**_workload(t, w, m, ttls, model_block_bytes or {}),
                           "alternatives": _alternatives(bills, w, m)}
                          for w, m in pairs],
            "cards": list(cards), "measured": list(measured)}


def decision_json(cards: Sequence[dict], *, slo_p90_s: float, days_per_month: float,
                  measured: Sequence[dict] = ()) -> dict:
    """``data/decision.json``: the cards (and the engine checks of the model), for tools."""
    return {"schema_version": SCHEMA_VERSION, "kind": "simkv.decision",
            "slo_ttft_p90_s": slo_p90_s, "days_per_month": days_per_month, "cards": list(cards),
            "measured": list(measured)}


def script_json(obj: dict) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` survive."""
    text = json.dumps(obj, separators=(",", ":"), sort_keys=True, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"explorer payload is {len(text.encode()):,} bytes (limit "
                         f"{MAX_PAYLOAD_BYTES:,}): it must carry aggregates only")
    return text
