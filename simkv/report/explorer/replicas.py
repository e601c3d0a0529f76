"""TTFT at a replica count sized to the load: the fewest replicas meeting a TTFT p90 objective.

Why: a TTFT predicted on a fixed replica count says nothing a buyer can use when the load needs
more replicas than that (the support assistant's p90 on one H100 was 11.5 minutes).  Every TTFT
the report predicts (the explorer's tables, the ``latency`` stage) goes through
:func:`simkv.latency.slo.sized_ttft`; this module keeps the explorer's names for it.
"""

from __future__ import annotations

from simkv.latency.slo import (
                               FLAT,
                               MAX_REPLICAS,
                               SizedTtft,
                               report_slo_s,
                               search_replicas,
                               sized_ttft,
)

_search = search_replicas

__all__ = ["FLAT", "MAX_REPLICAS", "SizedTtft", "_search", "report_slo_s", "sized_ttft"]
