"""``simkv workload generate|list`` and ``simkv trace import`` (added to the trace group).

Generation validates everything (spec, window, output path) before any work; the trace is
written to a temporary file next to ``--out`` and renamed into place, so bad input or an
interrupted run never leaves a partial file or clobbers an existing one without ``--force``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from simkv.cli.common import check_output_path, print_json, print_table
from simkv.cli.progress import ChunkProgress
from simkv.errors import InputError
from simkv.units import parse_duration
from simkv.validate import check_path_text
from simkv.workloads.budget import check_generation

workload_app = typer.Typer(help="Generate traces from workload specs (YAML).",
                           no_args_is_help=True)


def _window_s(days: float | None, hours: float | None, duration: str | None) -> float | None:
    given = [(n, v) for n, v in (("--days", days), ("--hours", hours), ("--duration", duration))
             if v is not None]
    if len(given) > 1:
        raise InputError("give at most one of --days, --hours, --duration",
                         where=" / ".join(n for n, _ in given))
    if not given:
        return None
    name, value = given[0]
    if name == "--duration":
        seconds = parse_duration(value, where="--duration")
        if seconds is None:
            raise InputError("the window must be finite", where="--duration")
        return seconds
    seconds = float(value) * (86400.0 if name == "--days" else 3600.0)
    if not seconds > 0 or seconds == float("inf"):
        raise InputError(f"must be > 0, got {value}", where=name)
    return seconds


@workload_app.command("generate")
def generate_cmd(
    spec: str = typer.Argument(..., help="Workload YAML file, or the name of an example workload."),
    out: Path = typer.Option(..., "--out", "-o", help="Output trace (.parquet; format from suffix)."),
    days: float | None = typer.Option(None, "--days", help="Generate this many days (default: the spec's duration)."),
    hours: float | None = typer.Option(None, "--hours", help="Generate this many hours."),
    duration: str | None = typer.Option(None, "--duration", help="Generate this window (e.g. 90m, 2h, 3d)."),
    seed: int | None = typer.Option(None, "--seed", help="Override the spec's seed."),
    block_tokens: int | None = typer.Option(None, "--block-tokens", help="Override the spec's block size (tokens)."),
    format: str | None = typer.Option(None, "--format", help="Output format (default: from suffix)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    chunk_requests: int = typer.Option(1 << 16, "--chunk-requests", help="Requests laid out, hashed and written per chunk (memory: one chunk)."),
) -> None:
    """Generate a trace from a workload spec; same spec and seed => byte-identical output."""
    from simkv.trace.formats import get_format, guess_format, save_trace_chunks
    from simkv.trace.stream import check_chunk_requests
    from simkv.workloads import find_workload, load_spec, with_overrides
    from simkv.workloads.generator import chunks, plan, run_sessions

    window_s = _window_s(days, hours, duration)
    check_output_path(out, force=force, what="--out")
    fmt_name = format or guess_format(out)
    if get_format(fmt_name).write is None:
        raise InputError(f"format {fmt_name!r} can be read but not written", where="--format")
    check_path_text(spec, "SPEC")
    wl = with_overrides(load_spec(find_workload(spec)), seed=seed, duration_s=window_s,
                        block_tokens=block_tokens)
    check_chunk_requests(chunk_requests)
    check_generation(wl, wl.duration_s, chunk_requests)
    p = plan(wl)
    reqs = run_sessions(p)
    if len(reqs.session) == 0:
        raise InputError("the window holds no requests (raise --days/--hours or the rate)",
                         source=wl.source)
    totals = {"blocks": 0, "input_tokens": 0}
    first: list = []

    def counted(stream):
        for chunk in stream:
            first[:] = first or [chunk]
            totals["blocks"] += chunk.n_block_accesses
            totals["input_tokens"] += int(chunk.input_tokens.sum())
            yield chunk

    with ChunkProgress(f"generate {wl.name}", len(reqs.session)) as progress:
        def reported(stream):
            done = 0
            for chunk in stream:
                yield chunk
                done += chunk.n_requests
                progress(done)

        save_trace_chunks(reported(counted(chunks(p, reqs, chunk_requests))), out, fmt_name)
    meta = first[0].meta
    summary = {
        "workload": wl.name, "seed": wl.seed, "window_s": wl.duration_s,
        "block_tokens": first[0].block_tokens, "requests": int(len(reqs.session)),
        "sessions": int(meta.get("sessions", 0)), "blocks": totals["blocks"],
        "input_tokens": totals["input_tokens"], "events": len(meta.get("events", [])),
        "out": str(out), "bytes": out.stat().st_size,
    }
    if json_out:
        print_json(summary)
    else:
        print_table(f"workload {wl.name}", list(summary.items()))


@workload_app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The example workloads: name, one-line description, path."""
    from simkv.workloads import example_workloads

    items = [{"name": w.name, "description": w.description, "path": str(w.path)}
             for w in example_workloads()]
    if json_out:
        print_json(items)
        return
    from rich.table import Table

    from simkv.cli.common import console

    table = Table(title="example workloads")
    for col in ("name", "description", "path"):
        table.add_column(col, overflow="fold")
    for it in items:
        table.add_row(it["name"], it["description"], it["path"])
    console.print(table)


def import_cmd(
    src: Path = typer.Argument(..., help="Input file (JSONL)."),
    dst: Path = typer.Argument(..., help="Output trace (.parquet; format from suffix)."),
    format: str = typer.Option(..., "--format", help="Input format: alibaba or openai-log."),
    block_tokens: int | None = typer.Option(None, "--block-tokens", help="Block size: of the input's hash_ids (alibaba, default 16) or to hash at (openai-log, default 16)."),
    tokenizer: Path | None = typer.Option(None, "--tokenizer", help="A local tokenizer.json (openai-log; needs the 'tokenizers' package)."),
    force: bool = typer.Option(False, "--force", help="Overwrite DST if it exists."),
    chunk_requests: int | None = typer.Option(None, "--chunk-requests", help="Requests parsed and written per chunk (memory: one chunk; default 65536)."),
    sort_run_requests: int = typer.Option(1 << 16, "--sort-run-requests", help="Input out of time order: requests sorted in memory per run, spilled to a temporary file (TMPDIR) and merged (memory: one run)."),
) -> None:
    """Import a third-party trace or request log into a simkv trace.

    Input out of time order is sorted on disk (runs of --sort-run-requests, merged), so
    memory stays bounded either way."""
    from simkv.trace.formats import FORMATS, guess_format, save_trace_chunks
    from simkv.trace.import_stream import import_chunks, scan_import
    from simkv.trace.stream import DEFAULT_CHUNK_REQUESTS, check_chunk_requests

    check_chunk_requests(chunk_requests)
    if sort_run_requests <= 0:
        raise InputError(f"must be a whole number of requests >= 1, got {sort_run_requests}",
                         where="--sort-run-requests")
    check_output_path(dst, force=force, what="DST", inputs=(src,))
    out_fmt = guess_format(dst)
    if FORMATS.get(out_fmt).write is None:
        raise InputError(f"format {out_fmt!r} can be read but not written", source=dst)
    kwargs: dict = {}
    if block_tokens is not None:
        kwargs["block_tokens"] = block_tokens
    if tokenizer is not None:
        if format != "openai-log":
            raise InputError("--tokenizer applies only to --format openai-log", where="--tokenizer")
        kwargs["tokenizer"] = tokenizer
    if format not in ("alibaba", "openai-log"):
        FORMATS.get(format, where="--format")  # unknown names list the valid ones
        raise InputError(f"use 'simkv trace convert' for {format!r}; import takes alibaba or "
                         "openai-log", where="--format")
    scan = scan_import(src, format, **kwargs)  # first pass: metadata facts, time order
    chunk = chunk_requests or DEFAULT_CHUNK_REQUESTS
    counts = [0, 0, scan.block_tokens]

    def counted(chunks):
        for c in chunks:
            counts[0] += c.n_requests
            counts[1] += c.n_block_accesses
            yield c

    if scan.in_order:  # second pass, chunk by chunk: memory is one chunk plus the numbering
        save_trace_chunks(counted(import_chunks(scan, chunk)), dst, out_fmt)
    else:  # out of time order: sorted runs spilled to a temporary folder, merged back
        from simkv.trace.import_sort import SortedImport

        with SortedImport(scan, run_requests=sort_run_requests) as runs:
            save_trace_chunks(counted(runs.chunks(chunk)), dst, out_fmt)
    typer.echo(f"wrote {dst} ({counts[0]} requests, {counts[1]} blocks of "
               f"{counts[2]} tokens)")


def register(app: typer.Typer) -> None:
    app.add_typer(workload_app, name="workload")
    try:
        from simkv.cli.cmd_trace import trace_app
    except ImportError:  # the trace group is the lead's; without it there is no import command
        return
    if not any(getattr(c, "name", None) == "import" for c in trace_app.registered_commands):
        trace_app.command("import")(import_cmd)
