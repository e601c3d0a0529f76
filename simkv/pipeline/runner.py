"""Run the registered stages into a run folder, each only when its cache key changed.

A stage's cache key is the SHA-256 of: its name and the stage schema version, the hash of the
code it runs (``codehash``), the report options it names, the digests of the external inputs
it reads, and the output digests of the upstream stages it needs.  A stage whose folder holds a
manifest with the same key and files that still match their recorded hashes is reused; any
other is rebuilt in a temporary folder that then replaces the old one.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simkv.atomicio import (
    atomic_write_bytes,
    atomic_write_text,
    read_manifest,
    sha256_file,
    write_manifest,
)
from simkv.codehash import code_sha256
from simkv.pipeline.context import StageContext
from simkv.pipeline.inputs import RunInputs, input_hashes
from simkv.pipeline.progress import Progress
from simkv.pipeline.stage import STAGE_SCHEMA_VERSION, STAGES, Stage, StageOutput
from simkv.report import provenance
from simkv.report.model import ReportOptions
from simkv.report.runview import FACTS, MANIFEST


@dataclass(frozen=True)
class StageRun:
    name: str
    status: str          # "ran", "cached" or "skipped"
    wall_s: float
    output_sha256: str = ""


def ordered_stages(names: list[str] | None = None) -> list[Stage]:
    """Registered stages in dependency order (name order breaks ties); ``names`` and the
    stages they need, or all."""
    stages = {n: STAGES.get(n) for n in STAGES.names()}
    wanted = set(stages) if names is None else set()
    todo = list(names or [])
    while todo:
        n = STAGES.get(todo.pop(), where="--stage").name
        if n not in wanted:
            wanted.add(n)
            todo.extend(stages[n].needs)
    out: list[Stage] = []
    done: set[str] = set()
    pending = [stages[n] for n in STAGES.names() if n in wanted]
    while pending:
        ready = [s for s in pending if set(s.needs) <= done]
        if not ready:
            raise ValueError(f"stage dependencies form a cycle: {[s.name for s in pending]}")
        out.append(ready[0])
        done.add(ready[0].name)
        pending.remove(ready[0])
    return out


def stage_key(stage: Stage, options: ReportOptions, inputs: RunInputs,
              upstream: dict[str, str]) -> tuple[str | None, dict[str, Any]]:
    """(cache key or None when an input cannot be keyed, the material it was hashed from)."""
    digests: dict[str, Any] = input_hashes(stage.reads, options, inputs)
    digests.update(stage.digests(options))
    material = {
        "stage": stage.name, "stage_schema_version": STAGE_SCHEMA_VERSION,
        "code_sha256": code_sha256(stage.module, stage.code_roots),
        "config": {o: _jsonable(getattr(options, o)) for o in stage.options},
        "inputs": digests, "upstream": {n: upstream[n] for n in stage.needs},
    }
    if any(v is None for v in digests.values()):
        return None, material
    blob = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), material


def _jsonable(v: Any) -> Any:
    return str(v) if isinstance(v, Path) else v


def _cached(folder: Path, key: str | None) -> dict[str, Any] | None:
    """The folder's manifest when it holds a complete output for ``key``."""
    mpath = folder / MANIFEST
    if key is None or not mpath.is_file():
        return None
    man = read_manifest(mpath)
    if man.get("cache_key") != key:
        return None
    for rel, digest in man["files"].items():
        p = folder / rel
        if not p.is_file() or sha256_file(p) != digest:
            return None
    return man


def _write_output(tmp: Path, out: StageOutput) -> dict[str, dict[str, Any]]:
    tables = {}
    for name, frame in out.tables.items():
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        atomic_write_bytes(tmp / f"{name}.parquet", buf.getvalue())
        tables[name] = {"schema_version": out.schema_versions.get(name, 1), "rows": int(len(frame)),
                        "columns": [str(c) for c in frame.columns]}
    atomic_write_text(tmp / FACTS, json.dumps(out.facts, indent=2, sort_keys=True, default=str) + "\n")
    return tables


def _files_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def run_stage(stage: Stage, options: ReportOptions, inputs: RunInputs, run_dir: Path,
              upstream: dict[str, str]) -> StageRun:
    t0 = time.perf_counter()
    folder = run_dir / stage.name
    key, material = stage_key(stage, options, inputs, upstream)
    man = _cached(folder, key)
    if man is not None:
        return StageRun(stage.name, "cached", round(time.perf_counter() - t0, 3), man["output_sha256"])
    tmp = Path(tempfile.mkdtemp(prefix=f".{stage.name}.", dir=run_dir))
    try:
        ctx = StageContext(options, inputs, run_dir, tmp, upstream)
        output = stage.run(ctx)
        tables = _write_output(tmp, output)
        if not output.cacheable:
            key = None
        files = _files_of(tmp)
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        write_manifest(tmp / MANIFEST, "simkv.stage", files, stage=stage.name, cache_key=key,
                       stage_schema_version=STAGE_SCHEMA_VERSION, code_sha256=material["code_sha256"],
                       config=material["config"], seed=options.seed, inputs=material["inputs"],
                       upstream=material["upstream"], git=provenance.git_commit(), tables=tables,
                       output_sha256=digest)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return StageRun(stage.name, "ran", round(time.perf_counter() - t0, 3), digest)


def run_stages(options: ReportOptions, run_dir: Path, inputs: RunInputs, *,
               names: list[str] | None = None, progress: Progress | None = None) -> list[StageRun]:
    """Run (or reuse) the stages and write the run folder's own manifest; returns what happened."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress(0, enabled=False)
    upstream: dict[str, str] = {}
    runs: list[StageRun] = []
    for stage in ordered_stages(names):
        if not stage.enabled(options):
            runs.append(StageRun(stage.name, "skipped", 0.0))
            continue
        progress.stage(stage.label)
        r = run_stage(stage, options, inputs, run_dir, upstream)
        upstream[stage.name] = r.output_sha256
        runs.append(r)
        progress.advance()
    files = {f"{r.name}/{MANIFEST}": sha256_file(run_dir / r.name / MANIFEST)
             for r in runs if r.status != "skipped"}
    # no wall-clock values in the run folder: two fresh runs leave identical bytes
    write_manifest(run_dir / MANIFEST, "simkv.run", files, seed=options.seed,
                   stages=[{"name": r.name, "status": r.status} for r in runs])
    return runs
