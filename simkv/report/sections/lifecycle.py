"""Section 5: lifecycle and visibility, the brief's storage view.

Utilization over time per storage level, bytes by model, stale bytes after a prompt (template)
change, and what a reset does; from the sizing engine's levels and lifecycle events
(simkv.sizing), replayed on each workload.
"""

from __future__ import annotations

import pandas as pd

from simkv.report.deps import first_available
from simkv.report.figures import new_figure
from simkv.report.model import Missing, ReportContext, Section

KEY = "lifecycle"


def build(ctx: ReportContext) -> Section:
    sec = Section(KEY, "Lifecycle and visibility")
    sec.intro = ("What the bucket holds over time: utilization per storage level, bytes by model, "
                 "stale bytes left by a prompt change, and the effect of a reset.")
    try:
        fn = first_available(("simkv.sizing", "storage_view"), ("simkv.sizing.visibility", "storage_view"))
    except Missing as exc:
        sec.status = "unavailable"
        sec.mark_missing(f"lifecycle and visibility: {exc}")
        return sec
    for w in ctx.workloads:
        view = fn(w.trace, spec=w.spec)
        for name, frame in sorted(view.items()):
            if not isinstance(frame, pd.DataFrame) or frame.empty:
                continue
            data = ctx.write_data(f"visibility_{w.name}_{name}", frame)
            with new_figure() as (fig, ax):
                frame.plot(ax=ax, x=frame.columns[0], legend=True)
                ax.set_title(f"{w.name}: {name.replace('_', ' ')}", fontsize=9)
                sec.figures.append(ctx.figure(KEY, fig, title=f"{w.name}: {name}",
                                              caption=name.replace("_", " ") + ".",
                                              data_file=data, basis="modelled"))
    return sec
