"""simkv's own stages; importing this package registers them (in this order) in
``simkv.pipeline.stage.STAGES``.  A plug-in stage (the harness's ``measured``) registers through
the ``simkv.stages`` entry point group instead (``simkv.pipeline.plugins``)."""

from simkv.pipeline.stages import (  # noqa: F401 - imported to register
    bench,
    bills,
    grid,
    latency,
    lifecycle,
    recommend,
    simulate,
    workloads,
)
