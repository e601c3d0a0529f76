"""``simkv lifecycle``: replay a trace through storage levels with lifecycle events and write
the storage view (per-request records, utilization over time, bytes by model, stale bytes,
hit rate by prompt component) as Parquet files.

The trace is read as a stream of chunks (``--chunk-requests``) and the records are written
chunk by chunk, so memory is the levels' state plus one chunk, however long the trace."""

from __future__ import annotations

from pathlib import Path

import typer

from simkv import guard
from simkv.atomicio import atomic_path
from simkv.cli.common import check_output_dir, print_json, print_table
from simkv.trace.records import RecordsWriter
from simkv.trace.stream import DEFAULT_CHUNK_REQUESTS, TraceSource, check_chunk_requests
from simkv.units import parse_size

FILES = ("records", "timeline", "bytes_by_model", "components", "events")

#: Bytes of one storage-view sample (a row per level and per model in the timeline frames).
BYTES_PER_SAMPLE = 512


def _size(text: str | None, where: str) -> int | None:
    if text is None or text.strip().lower() in ("inf", "unlimited"):
        return None
    return parse_size(text, where=where)


def _block_tokens(source: TraceSource) -> int:
    """The trace's block size, from its first chunk (the default levels chunk at it)."""
    first = next(source.chunks(1, columns=(), ids_as_keys=True), None)
    if first is None:
        from simkv.errors import InputError

        raise InputError("the trace has no requests", source=source.path)
    return first.block_tokens


def lifecycle_cmd(
    trace_path: Path = typer.Option(..., "--trace", help="Trace file."),
    format: str | None = typer.Option(None, "--format", help="Trace format (default: from suffix)."),
    model: str | None = typer.Option(None, "--model", help="Model for a trace that names none."),
    levels_path: Path | None = typer.Option(None, "--levels", help="Hierarchy YAML (levels, placement, admission, events); see docs/sizing.md."),
    hbm: str = typer.Option("20GiB", "--hbm", help="HBM prefix cache size (default hierarchy; 0 leaves it out)."),
    dram: str = typer.Option("5GB", "--dram", help="CPU DRAM level size (default hierarchy)."),
    nvme: str = typer.Option("0", "--nvme", help="Local NVMe level size (default hierarchy)."),
    bucket: str = typer.Option("inf", "--bucket", help="Remote persistent bucket size (default hierarchy)."),
    hbm_chunk: int | None = typer.Option(None, "--hbm-chunk", help="HBM block size in tokens (default: the trace's)."),
    chunk: int | None = typer.Option(None, "--chunk", help="Chunk size of the levels below HBM (default: the trace's block size)."),
    placement: str = typer.Option("inclusive", "--placement", help="inclusive | exclusive."),
    admission: str = typer.Option("all", "--admission", help="all | second_access."),
    no_promote: bool = typer.Option(False, "--no-promote", help="Do not copy hits up into faster levels."),
    no_demote: bool = typer.Option(False, "--no-demote", help="Drop evicted entries instead of moving them down."),
    event: list[str] = typer.Option([], "--event", help="TIME:KIND[:key=value,...], e.g. 1h:replica_restart, 2h:reset, 30m:tier_upgrade:level=bucket,capacity=4TB."),
    no_trace_events: bool = typer.Option(False, "--no-trace-events", help="Ignore events stored in the trace by the workload generator."),
    sample_interval: float | None = typer.Option(None, "--sample-interval-s", help="Seconds between storage-view samples (default: 1/200 of the trace)."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Write records/timeline/bytes_by_model/components/events .parquet here."),
    force: bool = typer.Option(False, "--force", help="Overwrite files in --out-dir."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    chunk_requests: int = typer.Option(DEFAULT_CHUNK_REQUESTS, "--chunk-requests", help="Requests read and walked per chunk (memory: one chunk)."),
) -> None:
    """Storage levels + lifecycle events over a trace; the storage view as results files."""
    from simkv.sizing.config import load_hierarchy
    from simkv.sizing.hierarchy import simulate_levels, trace_span
    from simkv.sizing.levels import Hierarchy, default_levels
    from simkv.sizing.lifecycle import parse_event

    cli_events = [parse_event(e) for e in event]
    if out_dir is not None:
        check_output_dir(out_dir, [f"{f}.parquet" for f in FILES], force=force,
                         what="--out-dir")
    check_chunk_requests(chunk_requests)
    source = TraceSource.of(trace_path, format)
    if sample_interval is not None:
        samples = trace_span(source, chunk_requests) / sample_interval + 1
        guard.check(samples * BYTES_PER_SAMPLE,
                    f"--sample-interval-s {sample_interval:g} ({samples:.3g} samples)")
    file_events = []
    if levels_path is not None:
        hierarchy, file_events = load_hierarchy(levels_path)
    else:
        bt = _block_tokens(source)
        levels = default_levels(hbm_bytes=_size(hbm, "--hbm"), dram_bytes=_size(dram, "--dram"),
                                nvme_bytes=_size(nvme, "--nvme"), bucket_bytes=_size(bucket, "--bucket"),
                                hbm_chunk_tokens=hbm_chunk or bt, chunk_tokens=chunk or bt)
        hierarchy = Hierarchy(levels, placement=placement, promote_on_hit=not no_promote,
                              demote_on_evict=not no_demote, admission=admission)
    if out_dir is not None:
        out_dir.mkdir(exist_ok=True)
    records_path = None if out_dir is None else out_dir / "records.parquet"
    with RecordsWriter(records_path) as sink:
        result = simulate_levels(source, hierarchy, model=model, events=file_events + cli_events,
                                 use_trace_events=not no_trace_events,
                                 sample_interval_s=sample_interval, chunk_requests=chunk_requests,
                                 keep=False, sink=sink if records_path is not None else None)
    if out_dir is not None:
        for name, frame in result.frames().items():
            with atomic_path(out_dir / f"{name}.parquet") as tmp:
                frame.to_parquet(tmp, index=False)
    summary = dict(result.summary)
    if json_out:
        print_json(summary)
    else:
        print_table(f"lifecycle {trace_path.name}: {', '.join(lv.name for lv in hierarchy.levels)}",
                    [(k, v) for k, v in summary.items() if not isinstance(v, list)])


def register(app: typer.Typer) -> None:
    app.command("lifecycle")(lifecycle_cmd)
