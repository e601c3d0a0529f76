"""The report as a decision: decision cards per workload and the in-page explorer.

Modules: ``money`` (the bill formulas the page repeats in JavaScript), ``sensitivity`` (+-50%
moves), ``replicas`` (TTFT at replicas sized to an SLO), ``tables`` (the grid at 1x/2x/5x
traffic, volumes, sized TTFT), ``card`` (one card from the tables), ``payload`` (the JSON the
page and tools read), ``section`` (wiring into the report).  See docs/report.md.
"""
