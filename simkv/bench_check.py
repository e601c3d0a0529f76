"""``make bench-check``: compare benchmark ratios with the committed baseline.

Benchmarks record ratios (never absolute times: machines differ) in pytest-benchmark's
``extra_info`` under keys ending in ``_ratio``.  The baseline (``tests/bench/baseline.json``)
lists, per benchmark and key, the reference value, whether higher or lower is better, and the
margin (a fraction) by which it may worsen before the check fails.  The issue's goal for each
ratio, if any, is printed beside it for the reader.  Exit status 1 on a regression, 2 on a
missing or unreadable file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        sys.stderr.write(f"simkv bench-check: error: {path}: not found (run `make bench` first)\n")
        raise SystemExit(2) from None
    except json.JSONDecodeError as exc:
        sys.stderr.write(f"simkv bench-check: error: {path}: invalid JSON at line {exc.lineno}\n")
        raise SystemExit(2) from None


def latest_ratios(results: dict) -> dict[str, dict[str, float]]:
    """{benchmark name: {ratio key: value}} from a pytest-benchmark JSON file."""
    out: dict[str, dict[str, float]] = {}
    for bench in results.get("benchmarks", []):
        ratios = {k: float(v) for k, v in bench.get("extra_info", {}).items()
                  if k.endswith("_ratio") and isinstance(v, int | float)}
        if ratios:
            out[bench["name"]] = ratios
    return out


def check(latest: dict[str, dict[str, float]], baseline: dict) -> list[str]:
    """Lines describing each comparison; those starting with FAIL are regressions."""
    lines = []
    for name, keys in sorted(baseline.items()):
        for key, ref in sorted(keys.items()):
            value = latest.get(name, {}).get(key)
            if value is None:
                lines.append(f"FAIL {name}.{key}: missing from the latest results")
                continue
            higher = ref.get("direction", "higher") == "higher"
            margin = float(ref.get("margin", 0.3))
            base = float(ref["value"])
            limit = base * (1 - margin) if higher else base * (1 + margin)
            bad = value < limit if higher else value > limit
            goal = ref.get("goal")
            goal_txt = ""
            if goal is not None:
                met = value >= goal if higher else value <= goal
                goal_txt = f"; goal {'>=' if higher else '<='} {goal:g} {'met' if met else 'NOT met'}"
            lines.append(f"{'FAIL' if bad else 'ok  '} {name}.{key} = {value:.3f} (baseline {base:.3f}, "
                         f"limit {limit:.3f}{goal_txt})")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.stderr.write("usage: python -m simkv.bench_check LATEST.json BASELINE.json\n")
        return 2
    latest = latest_ratios(_load(Path(argv[0])))
    baseline = _load(Path(argv[1]))
    lines = check(latest, baseline)
    for line in lines:
        print(line)
    failed = [ln for ln in lines if ln.startswith("FAIL")]
    print(f"bench-check: {len(lines) - len(failed)} ok, {len(failed)} regressed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
