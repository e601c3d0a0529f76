"""The run side of simkv: registered stages that compute results into a run folder.

``simkv run`` (and ``make report``, ``simkv report``) run the stages; ``simkv.report`` only
renders the run folder they leave.  See docs/pipeline.md for the layout, the manifest fields
and the cache keys.  Nothing is imported here: importing a subpackage has no side effect
beyond registering its stages.
"""
