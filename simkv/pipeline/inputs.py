"""Where a run's workloads come from, and the content hashes of every external input.

A stage's cache key names the external inputs it ``reads``; :func:`input_hashes` turns each
name into SHA-256 digests of the files behind it (an absent optional file hashes as
``"absent"``), so editing a price book changes only the keys of the stages that read price
books.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from simkv.atomicio import sha256_file
from simkv.pipeline.workload import WorkloadInput
from simkv.report.model import ReportOptions


@dataclass(frozen=True)
class RunInputs:
    """The workloads of a run: example specs in a folder, a user's trace, or given in memory."""

    workloads_dir: Path | None = None
    trace_path: Path | None = None
    trace_model: str | None = None
    trace_format: str | None = None
    given: tuple[WorkloadInput, ...] | None = None
    #: for ``given`` workloads loaded from files: the digest of those files (then cached)
    given_digest: str | None = None


def _dir_digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.name):
        h.update(f.name.encode() + b"\0" + sha256_file(f).encode())
    return h.hexdigest()


def _file_digest(path: Path | None) -> str:
    return sha256_file(path) if path is not None and Path(path).is_file() else "absent"


#: the shipped price books (``simkv.economics.pricebook.default_pricebook_dir``; named here so
#: that hashing them imports no economics module)
SHIPPED_PRICEBOOKS = Path(__file__).resolve().parents[1] / "data" / "pricebooks"


def pricebook_files(options: ReportOptions) -> list[Path]:
    root = SHIPPED_PRICEBOOKS if options.pricebooks_dir is None else Path(options.pricebooks_dir)
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.name.endswith((".yaml", ".yml"))
            and not p.name.startswith(".")]


def workload_digest(inputs: RunInputs) -> str | None:
    """Digest of the workload sources; None when they are in memory (never cached)."""
    if inputs.given is not None:
        return inputs.given_digest
    if inputs.trace_path is not None:
        h = hashlib.sha256(_file_digest(inputs.trace_path).encode())
        h.update(f"{inputs.trace_model}\0{inputs.trace_format}".encode())
        return h.hexdigest()
    if inputs.workloads_dir is None:
        return None
    return _dir_digest(list(Path(inputs.workloads_dir).glob("*.yaml")))


def input_hashes(reads: tuple[str, ...], options: ReportOptions, inputs: RunInputs) -> dict[str, str | None]:
    """``{input name: digest}`` for the inputs a stage reads."""
    out: dict[str, str | None] = {}
    for name in reads:
        if name == "workload_sources":
            out[name] = workload_digest(inputs)
        elif name == "pricebooks":
            out[name] = _dir_digest(pricebook_files(options))
        elif name == "tiers":
            out[name] = _file_digest(options.tiers_path)
        elif name == "bench":
            out[name] = _file_digest(options.bench_path) + ":" + _file_digest(options.baseline_path)
        elif name == "measured_file":
            out[name] = _file_digest(options.measured_path)
        else:
            raise ValueError(f"unknown stage input {name!r}")
    return out
