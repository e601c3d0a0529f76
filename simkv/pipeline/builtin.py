"""simkv's own stages: importing this module registers them in
``simkv.pipeline.stage.STAGES``.  (Kept apart from ``simkv/pipeline/stages/__init__.py`` so
that a stage's code hash, which follows its imports and parent packages, does not cover every
other stage.)  A plug-in stage (the harness's ``measured``) registers through the
``simkv.stages`` entry point group instead (``simkv.pipeline.plugins``).
"""


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
