"""Stages from other packages, through the ``simkv.stages`` entry point group.

simkv never imports the harness (the harness imports simkv), so the harness's ``measured``
stage lives in ``harness/stage.py`` and is declared in pyproject.toml::

    [project.entry-points."simkv.stages"]
    measured = "harness.stage"

Loading an entry point imports its module, which registers the stage.  This is the one
sanctioned discovery besides the CLI's command discovery, and it runs only at the edge: the
``simkv run`` / ``simkv report`` commands and ``python -m simkv.pipeline.make_report`` call
:func:`load_plugin_stages`; library code and the renderer never do.
"""

from __future__ import annotations

from importlib.metadata import entry_points

GROUP = "simkv.stages"


def load_plugin_stages() -> list[str]:
    """Import every ``simkv.stages`` entry point not loaded yet; returns their names."""
    import simkv.pipeline.builtin  # noqa: F401 - registers simkv's stages
    from simkv.pipeline.stage import STAGES

    loaded = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name not in STAGES:
            ep.load()
        loaded.append(ep.name)
    return loaded
