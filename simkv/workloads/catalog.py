"""The example workloads shipped in the repository's ``workloads/`` directory.

They are looked up in ``./workloads`` (the current directory) and next to the package
(``<repo>/workloads`` for a source checkout), so ``simkv workload list`` works from the repo
and ``simkv workload generate support-assistant`` accepts a name as well as a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from simkv.errors import InputError


@dataclass(frozen=True)
class ExampleWorkload:
    name: str
    description: str
    path: Path


def workload_dirs() -> list[Path]:
    dirs = [Path.cwd() / "workloads", Path(__file__).resolve().parents[2] / "workloads"]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(d.resolve() != o.resolve() for o in out):
            out.append(d)
    return out


def example_workloads() -> list[ExampleWorkload]:
    """Name, one-line description and path of every ``*.yaml`` in the workload directories
    (read without validating, so one broken file does not hide the others)."""
    found: dict[str, ExampleWorkload] = {}
    for d in workload_dirs():
        for path in sorted(d.glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                data = {}
            data = data if isinstance(data, dict) else {}
            name = str(data.get("name") or path.stem)
            desc = " ".join(str(data.get("description", "")).split())
            first = desc.split(". ")[0].rstrip(".")
            found.setdefault(name, ExampleWorkload(name, first, path))
    return [found[k] for k in sorted(found)]


def find_workload(spec: str) -> Path:
    """A spec argument as a path: an existing file, or the name of an example workload."""
    path = Path(spec)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in spec:
        return path
    for w in example_workloads():
        if w.name == spec or w.path.stem == spec:
            return w.path
    names = ", ".join(w.name for w in example_workloads()) or "none found"
    raise InputError(f"no such workload file or example name (examples: {names})", source=spec)
