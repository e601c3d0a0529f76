"""``simkv trace``: stats and format conversion (importers add ``trace import``)."""

from __future__ import annotations

from pathlib import Path

import typer

from simkv.analysis.trace_stats import trace_stats
from simkv.cli.common import check_output_path, print_json, print_table, stage
from simkv.trace.formats import save_trace_chunks
from simkv.trace.stream import TraceSource, check_chunk_requests

trace_app = typer.Typer(help="Inspect, convert and import traces.", no_args_is_help=True)


@trace_app.command("stats")
def stats_cmd(
    path: Path = typer.Argument(..., help="Trace file (Mooncake JSONL or simkv Parquet)."),
    format: str | None = typer.Option(None, "--format", help="Trace format (default: from suffix)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    chunk_requests: int | None = typer.Option(None, "--chunk-requests", help="Requests read per chunk (memory: one chunk plus per-block state; default 65536)."),
) -> None:
    """Requests, duration, tokens, unique blocks, infinite-cache hit ratios, reuse times."""
    check_chunk_requests(chunk_requests)
    with stage(f"reading {path.name}"):  # streamed: per-block state plus one chunk
        stats = trace_stats(TraceSource.of(path, format), chunk_requests)
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
    check_output_path(dst, force=force, what="DST", inputs=(src,))
    counts = [0, 0]

    def counted(chunks):
        for chunk in chunks:
            counts[0] += chunk.n_requests
            counts[1] += chunk.n_block_accesses
            yield chunk

    with stage(f"converting {src.name}"):  # chunk by chunk: memory is one chunk
        save_trace_chunks(counted(TraceSource.of(src, src_format).chunks()), dst, dst_format)
    typer.echo(f"wrote {dst} ({counts[0]} requests, {counts[1]} blocks)")


def _report_fit(tally, json_out: bool, what: str, dst: Path) -> dict:
    out = {"wrote": str(dst), "requests": tally.requests, "block_tokens": tally.block_tokens,
           "input_tokens_max": tally.input_tokens_max}
    if tally.max_model_len is not None:
        long = tally.cannot_run
        out.update(cannot_run=len(long), cannot_run_requests=long)
        if long and not json_out:
            typer.echo(f"note: {len(long)} of {tally.requests} requests exceed "
                       f"{tally.max_model_len} tokens (prompt + output): "
                       + ", ".join(str(r) for r in long[:20])
                       + (" ..." if len(long) > 20 else ""), err=True)
    if json_out:
        print_json(out)
    else:
        typer.echo(f"wrote {dst} ({what}: {tally.requests} requests, "
                   f"{tally.block_tokens}-token blocks)")
    return out


CHUNK_HELP = "Requests read per chunk (memory: one chunk; default 65536)."


@trace_app.command("scale")
def scale_cmd(
    src: Path = typer.Argument(..., help="Input trace."),
    dst: Path = typer.Argument(..., help="Output trace."),
    factor: float | None = typer.Option(None, "--factor", help="Multiply block size and token counts (0.125: 512-token blocks become 64), keeping every hash chain."),
    output_factor: float | None = typer.Option(None, "--output-factor", help="Multiply output lengths (default: --factor)."),
    block_tokens: int | None = typer.Option(None, "--block-tokens", help="Re-block to this size without changing token counts (exact when coarser)."),
    time_factor: float = typer.Option(1.0, "--time-factor", help="Multiply arrival gaps."),
    max_model_len: int | None = typer.Option(None, "--max-model-len", help="List requests that would still not fit an engine of this many tokens."),
    src_format: str | None = typer.Option(None, "--from", help="Input format."),
    force: bool = typer.Option(False, "--force", help="Overwrite DST if it exists."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    chunk_requests: int | None = typer.Option(None, "--chunk-requests", help=CHUNK_HELP),
) -> None:
    """Shrink or stretch token counts (keeping hash chains) or re-block a trace for a small engine."""
    from simkv.errors import InputError
    from simkv.trace.scale import FitTally, scale_chunks

    if (factor is None) == (block_tokens is None) and time_factor == 1.0:
        raise InputError("give --factor or --block-tokens (or --time-factor)", where="--factor")
    if factor is not None and block_tokens is not None:
        raise InputError("give --factor or --block-tokens, not both", where="--block-tokens")
    check_chunk_requests(chunk_requests)
    check_output_path(dst, force=force, what="DST", inputs=(src,))
    tally = FitTally(max_model_len)
    with stage(f"scaling {src.name}"):  # chunk by chunk: memory is one chunk
        chunks = TraceSource.of(src, src_format).chunks(chunk_requests)
        save_trace_chunks(tally.count(scale_chunks(
            chunks, factor=factor, output_factor=output_factor, block_tokens=block_tokens,
            time_factor=time_factor)), dst)
    _report_fit(tally, json_out, "scaled", dst)


@trace_app.command("slice")
def slice_cmd(
    src: Path = typer.Argument(..., help="Input trace."),
    dst: Path = typer.Argument(..., help="Output trace."),
    start_s: float | None = typer.Option(None, "--start-s", help="Keep requests arriving at or after this many seconds (from the first)."),
    end_s: float | None = typer.Option(None, "--end-s", help="... and before this many seconds."),
    requests: str | None = typer.Option(None, "--requests", help="Keep requests A:B (arrival order, B exclusive)."),
    sessions: int | None = typer.Option(None, "--sessions", help="Keep every request of N sampled sessions."),
    seed: int = typer.Option(0, "--seed", help="Seed of the session sample."),
    max_model_len: int | None = typer.Option(None, "--max-model-len", help="List requests that would not fit an engine of this many tokens."),
    src_format: str | None = typer.Option(None, "--from", help="Input format."),
    force: bool = typer.Option(False, "--force", help="Overwrite DST if it exists."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    chunk_requests: int | None = typer.Option(None, "--chunk-requests", help=CHUNK_HELP),
) -> None:
    """Keep part of a trace: a time window, a request range, or sampled whole sessions."""
    from simkv.errors import InputError
    from simkv.trace.scale import FitTally
    from simkv.trace.slice import slice_chunks

    if start_s is None and end_s is None and requests is None and sessions is None:
        raise InputError("give --start-s/--end-s, --requests or --sessions", where="--requests")
    check_chunk_requests(chunk_requests)
    check_output_path(dst, force=force, what="DST", inputs=(src,))
    source = TraceSource.of(src, src_format)
    tally = FitTally(max_model_len)
    with stage(f"slicing {src.name}"):  # streamed; --sessions reads the trace twice
        save_trace_chunks(tally.count(slice_chunks(
            lambda: source.chunks(chunk_requests), start_s=start_s, end_s=end_s,
            requests=requests, sessions=sessions, seed=seed)), dst)
    _report_fit(tally, json_out, "sliced", dst)


def register(app: typer.Typer) -> None:
    app.add_typer(trace_app, name="trace")
