"""Stage ``workloads``: the traces the report studies, saved losslessly (simkv Parquet).

From the example specs (``--workloads-dir``, each over its report window), a user's trace
(``--trace``), or workloads handed over in memory (tests, notebooks: never cached).
"""

from __future__ import annotations

import pandas as pd

from simkv.pipeline.context import StageContext
from simkv.pipeline.sources import example_workloads, user_trace
from simkv.pipeline.stage import Stage, StageOutput, register_stage


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return out.strip("_") or "workload"


class _Counted:
    """Chunks passed through, counting their requests (the trace is copied as a stream)."""

    def __init__(self, chunks) -> None:
        self._chunks = chunks
        self.requests = 0

    def __iter__(self):
        for chunk in self._chunks:
            self.requests += chunk.n_requests
            yield chunk


def run(ctx: StageContext) -> StageOutput:
    from simkv.trace.formats import save_trace_chunks

    inp = ctx.inputs
    if inp.given is not None:
        workloads = list(inp.given)
    elif inp.trace_path is not None:
        workloads = [user_trace(inp.trace_path, inp.trace_model, inp.trace_format)]
    else:
        workloads = example_workloads(inp.workloads_dir, quick=ctx.options.quick)
    (ctx.out_dir / "traces").mkdir()
    rows = []
    for i, w in enumerate(workloads):
        rel = f"traces/{i:03d}-{_slug(w.name)}.parquet"
        counted = _Counted(w.model_chunks())
        save_trace_chunks(counted, ctx.out_dir / rel)
        rows.append({"name": w.name, "model": w.model, "source": w.source,
                     "description": w.description, "sha256": w.sha256,
                     "seed": getattr(w.spec, "seed", None), "requests": counted.requests,
                     "trace_file": rel})
    frame = pd.DataFrame(rows, columns=["name", "model", "source", "description", "sha256", "seed",
                                        "requests", "trace_file"])
    frame["seed"] = frame["seed"].astype("Int64")
    return StageOutput(tables={"workloads": frame})


register_stage(Stage("workloads", "generating the example workloads", run,
                     reads=("workload_sources",), options=("quick",)))
