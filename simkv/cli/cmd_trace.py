"""``simkv trace``: stats and format conversion (importers add ``trace import``)."""

from __future__ import annotations

from pathlib import Path

import typer

from simkv.cli.common import check_output_path, print_json, print_table, stage
from simkv.trace import load_trace
from simkv.trace.formats import save_trace_chunks
from simkv.trace.stats import trace_stats
from simkv.trace.stream import TraceSource

trace_app = typer.Typer(help="Inspect, convert and import traces.", no_args_is_help=True)


@trace_app.command("stats")
def stats_cmd(
    path: Path = typer.Argument(..., help="Trace file (Mooncake JSONL or simkv Parquet)."),
    format: str | None = typer.Option(None, "--format", help="Trace format (default: from suffix)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Requests, duration, tokens, unique blocks, infinite-cache hit ratios, reuse times."""
    with stage(f"reading {path.name}"):
        stats = trace_stats(load_trace(path, format))
    if json_out:
        print_json(stats)
    else:
        print_table(f"trace {path.name}", [(k, v) for k, v in stats.items()
                                           if not isinstance(v, list)])


@trace_app.command("convert")
def convert_cmd(
    src: Path = typer.Argument(..., help="Input trace."),
    dst: Path = typer.Argument(..., help="Output trace (format from suffix unless --to)."),
    src_format: str | None = typer.Option(None, "--from", help="Input format."),
    dst_format: str | None = typer.Option(None, "--to", help="Output format."),
    force: bool = typer.Option(False, "--force", help="Overwrite DST if it exists."),
) -> None:
    """Convert between Mooncake JSONL and simkv Parquet (lossless both ways)."""
    check_output_path(dst, force=force, what="DST")
    counts = [0, 0]

    def counted(chunks):
        for chunk in chunks:
            counts[0] += chunk.n_requests
            counts[1] += chunk.n_block_accesses
            yield chunk

    with stage(f"converting {src.name}"):  # chunk by chunk: memory is one chunk
        save_trace_chunks(counted(TraceSource.of(src, src_format).chunks()), dst, dst_format)
    typer.echo(f"wrote {dst} ({counts[0]} requests, {counts[1]} blocks)")


def register(app: typer.Typer) -> None:
    app.add_typer(trace_app, name="trace")
