"""``simkv trace partition``: one dataset per store shard, by a spatial hash of the block hash.

Registered into the ``simkv trace`` group (``simkv/cli/cmd_trace.py``) so the group's own
module stays untouched; see ``simkv/trace/partition.py`` for the layout.
"""

from __future__ import annotations

from pathlib import Path

import typer

from simkv.cli.common import print_json, print_table, stage
from simkv.trace.partition import DEFAULT_CHUNK_REQUESTS, partition_trace


def partition_cmd(
    path: Path = typer.Argument(..., help="Trace file (simkv Parquet or Mooncake JSONL are read in chunks)."),
    shards: int = typer.Option(..., "--shards", help="Number of shards K (store nodes), 1 to the trace's unique blocks."),
    out: Path = typer.Option(..., "--out", help="Folder to write (must be new or empty; --force replaces a partition simkv wrote)."),
    format: str | None = typer.Option(None, "--format", help="Trace format (default: from suffix)."),
    chunk_requests: int = typer.Option(DEFAULT_CHUNK_REQUESTS, "--chunk-requests", help="Requests read per chunk of a JSONL trace (Parquet: one row group)."),
    force: bool = typer.Option(False, "--force", help="Replace a partition simkv wrote in --out."),
    json_out: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Write one dataset per shard (each holds only its blocks, with their positions)."""
    with stage(f"partitioning {path.name} into {shards} shards"):
        manifest = partition_trace(path, shards, out, format=format, chunk_requests=chunk_requests,
                                   force=force)
    summary = {k: v for k, v in manifest.items() if k not in ("files", "trace_meta", "hash")}
    if json_out:
        print_json(manifest)
    else:
        print_table(f"partition of {path.name} in {out}", list(summary.items()))


def register(app: typer.Typer) -> None:
    from simkv.cli.cmd_trace import trace_app

    trace_app.command("partition")(partition_cmd)
