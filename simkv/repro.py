"""``make verify-repro``: run the default report pipeline twice in fresh processes and demand
identical results.

Every file the pipeline writes is compared byte for byte, except for wall-clock values: the
keys named in ``simkv.report.provenance.WALL_CLOCK_FIELDS`` (the one place they are listed)
are dropped from JSON files before comparing.  The report writes wall-clock values nowhere
else, so any other difference, in any file, fails the check.  Exit status 1 on a difference.
Each run starts from an empty run folder (no stage is reused), and the run folders (stage
tables and manifests) are compared too.

``python -m simkv.repro --compare A B [--skip run] [--mask-git]`` compares two existing report
folders with the same machinery (e.g. the example report before and after a refactor: the
commit line then differs on purpose, which ``--mask-git`` masks).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def wall_clock_fields() -> tuple[str, ...]:
    from simkv.report.provenance import WALL_CLOCK_FIELDS

    return tuple(WALL_CLOCK_FIELDS)


def _strip_json(obj, fields):
    if isinstance(obj, dict):
        return {k: _strip_json(v, fields) for k, v in obj.items() if k not in fields}
    if isinstance(obj, list):
        return [_strip_json(v, fields) for v in obj]
    return obj


def normalised(path: Path, fields: tuple[str, ...]) -> bytes:
    """File content with the wall-clock keys of JSON files dropped."""
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            return json.dumps(_strip_json(json.loads(data), fields), sort_keys=True).encode()
        except ValueError:
            pass
    return data


def _listing(root: Path, skip: tuple[str, ...]) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] not in skip}


def compare_runs(a: Path, b: Path, fields: tuple[str, ...], *, skip: tuple[str, ...] = (),
                 mask: tuple[tuple[bytes, bytes], ...] = ()) -> list[str]:
    """Differences between two output trees (empty list when identical); top-level names in
    ``skip`` are left out, and each ``(old, new)`` of ``mask`` is replaced on both sides."""
    files_a = _listing(a, skip)
    files_b = _listing(b, skip)
    problems = [f"only in first run: {p}" for p in sorted(files_a - files_b)]
    problems += [f"only in second run: {p}" for p in sorted(files_b - files_a)]
    for rel in sorted(files_a & files_b):
        left, right = normalised(a / rel, fields), normalised(b / rel, fields)
        for old, new in mask:
            left, right = left.replace(old, new), right.replace(old, new)
        if left != right:
            problems.append(f"differs: {rel}")
    return problems


def run_pipeline(out: Path, extra: list[str]) -> None:
    cmd = [sys.executable, "-m", "simkv.pipeline.make_report", "--quick", "--no-progress", "--fresh",
           "--out", str(out), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"verify-repro: the pipeline failed (exit {proc.returncode}): {' '.join(cmd)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simkv.repro", description=__doc__)
    ap.add_argument("--keep", type=Path, help="keep both runs under this directory")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"),
                    help="compare two existing report folders instead of running the pipeline")
    ap.add_argument("--skip", action="append", default=[], help="top-level entry to leave out")
    ap.add_argument("--mask-git", action="store_true",
                    help="with --compare: mask the commit and dirty flag of each report")
    ap.add_argument("extra", nargs="*", help="extra arguments for make_report")
    args = ap.parse_args(argv)
    fields = wall_clock_fields()
    if args.compare:
        return _compare_existing(*args.compare, fields, tuple(args.skip), args.mask_git)
    with tempfile.TemporaryDirectory(prefix="simkv-repro-") as tmp:
        root = args.keep or Path(tmp)
        a, b = root / "run1", root / "run2"
        for d in (a, b):
            run_pipeline(d, args.extra)
        problems = compare_runs(a, b, fields)
        n_files = sum(1 for p in a.rglob("*") if p.is_file())
    for p in problems:
        print(p)
    print(f"verify-repro: {n_files} files compared, {len(problems)} differences "
          f"(wall-clock fields masked: {', '.join(fields)})")
    return 1 if problems else 0


#: what ``--mask-git`` removes from both sides: the dirty-tree note the report prints
DIRTY_NOTE = b" (with uncommitted changes)"


def _git_masks(a: Path, b: Path) -> tuple[tuple[bytes, bytes], ...]:
    """Each report's commit hash -> ``<commit>``, and the dirty-tree note removed."""
    commits = [json.loads((root / "data" / "provenance.json").read_text())["git"]["commit"]
               for root in (a, b)]
    full = tuple((c.encode(), b"<commit>") for c in commits)
    short = tuple((c[:12].encode(), b"<commit>") for c in commits)  # the page header's form
    return full + short + ((DIRTY_NOTE, b""),)


def _compare_existing(a: Path, b: Path, fields: tuple[str, ...], skip: tuple[str, ...],
                      mask_git: bool) -> int:
    mask = _git_masks(a, b) if mask_git else ()
    if mask_git:
        fields = fields + ("dirty",)
    problems = compare_runs(a, b, fields, skip=skip, mask=mask)
    for p in problems:
        print(p)
    n_files = len(_listing(a, skip))
    print(f"compare: {n_files} files compared, {len(problems)} differences "
          f"(wall-clock fields masked: {', '.join(fields)}"
          + ("; commit line masked" if mask_git else "") + ")")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
