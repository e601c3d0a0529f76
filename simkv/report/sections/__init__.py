"""Report sections, in the order they appear.  Each module has ``build(ctx) -> Section`` that
reads the run folder (``ctx.run``) only, and names ``KEY``, ``TITLE`` and ``READS`` (the stages
whose tables it reads: the render cache, ``simkv.report.sectioncache``, keys on their outputs).

Adding a section means writing one module and adding it to :data:`SECTIONS`.
"""

from __future__ import annotations

from simkv.report.sections import (
    bench,
    bills,
    cost_case,
    grid,
    lifecycle,
    overview,
    recommend,
    ttft,
)

#: (stage label shown by the progress bar, builder), in report order.
SECTIONS = (
    ("simulations", overview.build),
    ("cost case", cost_case.build),
    ("provider comparison", bills.build),
    ("capacity x TTL grid", grid.build),
    ("recommendation", recommend.build),
    ("lifecycle and visibility", lifecycle.build),
    ("TTFT and measured", ttft.build),
    ("bench results", bench.build),
)
