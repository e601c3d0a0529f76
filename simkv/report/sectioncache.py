"""Reuse a rendered section when nothing it depends on changed (a second ``make report``).

A section is a pure function of its module's code, the outputs of the stages it reads (their
``output_sha256`` in the run folder), the report options and the plotting library's version,
so its key is the SHA-256 of those.  The cached form is JSON: the section (readings, tables,
figures as base64 PNG) and the data files it wrote (CSV text), under
``<run>/.render-cache/<section>.json``; a hit rewrites the same data files byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, fields
from importlib.metadata import version
from pathlib import Path
from typing import Any

from simkv.atomicio import atomic_write_text, sha256_file
from simkv.codehash import code_sha256
from simkv.report.figures import Figure
from simkv.report.model import ReportContext, Section, Table

CACHE_DIR = ".render-cache"
CACHE_SCHEMA_VERSION = 1


def section_key(module: str, stages: tuple[str, ...], ctx: ReportContext) -> str:
    """The cache key of a section (a stage that did not run counts as ``"absent"``)."""
    digests = {}
    for st in stages:
        if not ctx.run.has(st):
            digests[st] = "absent"
            continue
        digests[st] = ctx.run.manifest(st).get("output_sha256")
    material = {"schema": CACHE_SCHEMA_VERSION, "code": code_sha256(module),
                "stages": digests, "options": repr(ctx.options),
                "measured_file": (sha256_file(mp) if (mp := ctx.options.measured_path) is not None
                                  and Path(mp).is_file() else None),
                "matplotlib": version("matplotlib")}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _encode(sec: Section, files: dict[str, str]) -> dict[str, Any]:
    body = asdict(sec)
    body["figures"] = [{**{f.name: getattr(fig, f.name) for f in fields(Figure) if f.name != "png"},
                        "png": base64.b64encode(fig.png).decode("ascii")} for fig in sec.figures]
    return {"section": body, "files": files}


def _decode(body: dict[str, Any]) -> Section:
    s = dict(body)
    s["figures"] = [Figure(**{**f, "png": base64.b64decode(f["png"])}) for f in s["figures"]]
    s["tables"] = [Table(title=t["title"], columns=tuple(t["columns"]),
                         rows=tuple(tuple(r) for r in t["rows"]), data_file=t["data_file"],
                         basis=t["basis"]) for t in s["tables"]]
    return Section(**s)


def cached_build(ctx: ReportContext, key_name: str, module: str, stages: tuple[str, ...],
                 build) -> Section:
    """``build(ctx)``, or the cached section (and its data files) for the same key."""
    key = section_key(module, stages, ctx)
    path = ctx.run.run_dir / CACHE_DIR / f"{key_name}.json"
    if path.is_file():
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry.get("key") == key:
            ctx.data_dir.mkdir(parents=True, exist_ok=True)
            for rel, text in entry["files"].items():
                atomic_write_text(ctx.out_dir / rel, text)
                ctx.data_files.append(rel)
            return _decode(entry["section"])
    before = list(ctx.data_files)
    sec = build(ctx)
    files = {rel: (ctx.out_dir / rel).read_text(encoding="utf-8")
             for rel in ctx.data_files if rel not in before}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"key": key, **_encode(sec, files)}) + "\n")
    return sec
