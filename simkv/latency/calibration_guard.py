"""Guarding a quiet-machine calibration: where a replay's load verdict comes from, and the
refusal to overwrite a calibration fitted on a quiet machine with one from a loaded machine."""

from __future__ import annotations

import json
from pathlib import Path

from simkv.errors import InputError
from simkv.latency.calibrate import Calibration, load_calibration


def _summary(records_path: Path) -> dict:
    """The harness's ``summary.json`` beside the records (empty when absent or unreadable)."""
    try:
        data = json.loads((Path(records_path).parent / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def replay_quiet(records_path: Path) -> bool | None:
    """Whether the harness replay that wrote ``records_path`` ran on a quiet machine (its
    ``summary.json`` beside the records; ``None`` when it does not say)."""
    machine = _summary(records_path).get("machine")
    quiet = machine.get("quiet") if isinstance(machine, dict) else None
    return quiet if isinstance(quiet, bool) else None


def replay_in_flight(records_path: Path) -> tuple[int | None, float | None]:
    """(requests in flight at most, the client's mean trip in seconds) of the replay that wrote
    ``records_path``, from its ``summary.json``.  Records without a summary (or one that does
    not say) are taken as one at a time, as the fit needs; a replay with no cap on requests in
    flight gives ``None``.  The trip is ``None`` when the summary does not hold it."""
    data = _summary(records_path)
    conc = data.get("concurrency", 1)
    trip = data.get("client_trip_mean_s")
    if conc is None:
        in_flight = None
    else:
        in_flight = int(conc) if isinstance(conc, int) and not isinstance(conc, bool) and conc >= 1 else 1
    return in_flight, float(trip) if isinstance(trip, int | float) and not isinstance(trip, bool) else None


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
