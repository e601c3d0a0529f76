"""Writing the report: ``index.html`` (one self-contained file) and ``report.md``.

Templates live in ``simkv/report/templates``; jinja2 autoescaping is on for the HTML, so any
text that came from a trace, a spec or a price book shows as text (a workload called
``<script>`` cannot run).  The Markdown gets the same characters escaped by the ``md`` filter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from simkv.atomicio import atomic_write_text
from simkv.report.model import Section

STATUS_TEXT = {"ok": "complete", "partial": "partial", "not_run": "not run",
               "unavailable": "unavailable"}


def _md_escape(value: Any) -> str:
    text = str(value)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|")):
        text = text.replace(a, b)
    return " ".join(text.split("\n"))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("simkv.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"),
                                            default_for_string=True),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )
    env.filters["md"] = _md_escape
    return env


def render(out_dir: Path, *, sections: list[Section], provenance: dict, title: str,
           subtitle: str, mode: str) -> tuple[Path, Path]:
    """Write index.html and report.md into ``out_dir``; returns both paths."""
    env = environment()
    # the workloads overview is section 0, so the numbered sections match the list
    first = 0 if sections and sections[0].key == "workloads" else 1
    for i, s in enumerate(sections, start=first):
        s.number = i
    ctx = {"sections": sections, "provenance": provenance, "title": title, "subtitle": subtitle,
           "mode": mode, "status_text": STATUS_TEXT}
    html = env.get_template("index.html.j2").render(**ctx)
    md = env.get_template("report.md.j2").render(**ctx)
    html_path, md_path = out_dir / "index.html", out_dir / "report.md"
    atomic_write_text(html_path, html)
    atomic_write_text(md_path, md)
    return html_path, md_path
