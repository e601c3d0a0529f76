"""Guarding a quiet-machine calibration: where a replay's load verdict comes from, and the
refusal to overwrite a calibration fitted on a quiet machine with one from a loaded machine."""

from __future__ import annotations

import json
from pathlib import Path

from simkv.errors import InputError
from simkv.latency.calibrate import Calibration, load_calibration


def replay_quiet(records_path: Path) -> bool | None:
    """Whether the harness replay that wrote ``records_path`` ran on a quiet machine (its
    ``summary.json`` beside the records; ``None`` when it does not say)."""
    summary = Path(records_path).parent / "summary.json"
    try:
        data = json.loads(summary.read_text())
    except (OSError, ValueError):
        return None
    machine = data.get("machine") if isinstance(data, dict) else None
    quiet = machine.get("quiet") if isinstance(machine, dict) else None
    return quiet if isinstance(quiet, bool) else None


def check_overwrite(existing: Path, new: Calibration, *, allow_loaded: bool) -> None:
    """Refuse to replace a quiet-machine calibration with one from a loaded machine."""
    if not Path(existing).exists() or allow_loaded:
        return
    old = load_calibration(Path(existing))
    old_quiet = bool(old.fit and old.fit.quiet)
    new_quiet = bool(new.fit and new.fit.quiet)
    if old_quiet and not new_quiet:
        raise InputError("holds a calibration from a quiet machine and the new records come from "
                         "a loaded (or unknown) one; give --allow-loaded to replace it anyway",
                         source=existing, where="--out")
