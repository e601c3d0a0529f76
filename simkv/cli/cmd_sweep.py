"""``simkv sweep``: exact LRU hit ratios over a capacity x TTL grid, from one pass."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from simkv.atomicio import atomic_path
from simkv.cli.common import check_output_path, console, print_json
from simkv.cli.progress import ChunkProgress
from simkv.errors import InputError
from simkv.trace.shardset import is_partition
from simkv.trace.stream import TraceSource, check_chunk_requests
from simkv.units import format_bytes, parse_duration, parse_list, parse_size
from simkv.validate import check_number, count, real

_UNLIMITED = ("inf", "unlimited", "none")


def _capacity(parse):
    def inner(text: str, *, where: str):
        if str(text).strip().lower() in _UNLIMITED:
            return None
        return parse(text, where=where)
    return inner


def _rate(text: str, *, where: str) -> float:
    """A SHARDS sampling rate in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"not a number: {text[:60]!r}", where=where) from None
    return float(check_number(value, real(0.0, 1.0, lo_open=True), where))


def _blocks(text: str, *, where: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InputError(f"not a whole number of blocks: {text!r}", where=where) from None
    if value < 0:
        raise InputError(f"must be >= 0: {text!r}", where=where)
    return int(check_number(value, count(0, 2**62), where))


def parse_grid_axes(capacities: str | None, capacities_blocks: str | None, ttls: str):
    """(capacities_bytes, capacities_blocks, ttls_s) lists from the CLI strings."""
    if (capacities is None) == (capacities_blocks is None):
        raise InputError("give --capacities SIZES (with a model) or --capacities-blocks N,... "
                         "(exactly one)", where="--capacities")
    cap_bytes = cap_blocks = None
    if capacities is not None:
        cap_bytes = parse_list(capacities, _capacity(parse_size), where="--capacities")
    else:
        cap_blocks = parse_list(capacities_blocks, _capacity(_blocks), where="--capacities-blocks")
    ttl_list = parse_list(ttls, parse_duration, where="--ttls")
    return cap_bytes, cap_blocks, ttl_list


def _print_grid(frame, title: str) -> None:
    col = "capacity_blocks" if "capacity_blocks" in frame else "capacity_bytes"
    ttls = list(dict.fromkeys(frame["ttl_s"].tolist()))
    table = Table(title=title + "  (block hit ratio / prefix-token hit ratio)")
    table.add_column("capacity (blocks)" if col == "capacity_blocks" else "capacity", no_wrap=True)
    for t in ttls:
        table.add_column("no TTL" if t is None or t is np.nan or str(t) == "<NA>" else f"TTL {t:g} s",
                         justify="right")
    belady = "belady_block_hit_ratio" in frame
    if belady:
        table.add_column("Belady (blocks)", justify="right")
    for cap, rows in frame.groupby(col, sort=False, dropna=False):
        cells = [f"{b:.3f} / {p:.3f}" for b, p in zip(rows.block_hit_ratio, rows.prefix_token_hit_ratio,
                                                      strict=True)]
        if belady:
            cells.append(f"{rows.belady_block_hit_ratio.iloc[0]:.3f}")
        if str(cap) in ("<NA>", "nan"):
            label = "unlimited"
        else:
            label = f"{cap:,}" if col == "capacity_blocks" else format_bytes(cap)
        table.add_row(label, *cells)
    console.print(table)


def sweep_cmd(
    trace_path: Path = typer.Option(..., "--trace", help="Trace file, or a `simkv trace partition` folder (SHARDS then samples one shard per task)."),
    format: str | None = typer.Option(None, "--format", help="Trace format (default: from suffix)."),
    model: str | None = typer.Option(None, "--model", help="Model for a trace that names none (needed for byte capacities)."),
    capacities: str | None = typer.Option(None, "--capacities", help="Capacities in bytes: 1GiB,10GiB,inf (needs a model)."),
    capacities_blocks: str | None = typer.Option(None, "--capacities-blocks", help="Capacities in blocks: 100,1000,inf."),
    ttls: str = typer.Option("inf", "--ttls", help="TTLs refreshed on hit: 1m,5m,1h,inf."),
    sample_rate: float | None = typer.Option(None, "--sample-rate", help="SHARDS spatial sampling rate in (0, 1] for traces too large (estimates)."),
    shards_error: str | None = typer.Option(None, "--shards-error", help="Instead of the grid, report SHARDS error against exact at these rates: 0.1,0.01."),
    belady: bool = typer.Option(False, "--belady", help="Add the Belady (optimal) block hit ratio per capacity."),
    executor: str = typer.Option("local", "--executor", help="local (processes) | ray | inline."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (default: start a local Ray)."),
    parts: int = typer.Option(1, "--parts", help="Split the TTL axis into this many independent parts (for --executor)."),
    out: Path | None = typer.Option(None, "--out", help="Write the grid as Parquet."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    json_out: bool = typer.Option(False, "--json", help="Print the grid points as a JSON list."),
    store_shards: int | None = typer.Option(None, "--store-shards", help="The grid of a store sharded over K nodes by block hash (one policy run per point per node); --trace may be a partition folder."),
    policy: str = typer.Option("lru", "--policy", help="Store node policy with --store-shards: lru, fifo, lfu."),
    chunk_requests: int | None = typer.Option(None, "--chunk-requests", help="Requests read per chunk of the one-pass grid (memory: one chunk plus per-block state; default 65536)."),
) -> None:
    """Exact LRU block and prefix-token hit ratios at every capacity x TTL, in one pass."""
    cap_bytes, cap_blocks, ttl_list = parse_grid_axes(capacities, capacities_blocks, ttls)
    if parts < 1:
        raise InputError("must be >= 1", where="--parts")
    if sample_rate is not None and not 0 < sample_rate <= 1:
        raise InputError("must be within (0, 1]", where="--sample-rate")
    if out is not None:
        check_output_path(out, force=force)
    from simkv.sizing.executor import check_executor, check_ray_address

    if check_executor(executor) == "ray":
        address = check_ray_address(address)  # an unreachable cluster fails before any work
    if policy != "lru" and store_shards is None:
        raise InputError("the one-pass grid is LRU; other policies need --store-shards", where="--policy")
    if store_shards is not None:
        frame = _store_grid(trace_path, format, store_shards, policy, cap_blocks, cap_bytes,
                            ttl_list, model, executor, address,
                            conflicts=sample_rate is not None or shards_error is not None or belady)
        _output(frame, out, json_out, f"sweep {trace_path.name} ({store_shards} store shards)")
        return
    # a `simkv trace partition` folder: SHARDS runs one sampled shard per task (docs/sizing.md)
    partition = is_partition(trace_path)
    if partition and belady and sample_rate is not None:
        raise InputError("Belady needs the whole trace, not a sample", where="--belady")
    check_chunk_requests(chunk_requests)
    source = None if partition else TraceSource.of(trace_path, format)
    kw = dict(capacities_blocks=cap_blocks, capacities_bytes=cap_bytes, ttls_s=ttl_list, model=model)
    if shards_error is not None:
        from simkv.sizing.shards import partition_shards_error
        from simkv.sizing.shards import shards_error as measure

        rates = parse_list(shards_error, _rate, where="--shards-error")
        frame = (partition_shards_error(trace_path, rates, executor=executor, address=address, **kw)
                 if partition else measure(source, rates, chunk_requests=chunk_requests, **kw))
    elif partition and sample_rate is not None:
        from simkv.sizing.shards import partition_grid

        frame = partition_grid(trace_path, sample_rate, executor=executor, address=address, **kw)
    else:
        frame = _exact_grid(trace_path, source, partition, belady, sample_rate, executor, address,
                            parts, chunk_requests, kw)
    if shards_error is not None:
        _output(frame, out, json_out, None)
    else:
        _output(frame, out, json_out,
                f"sweep {trace_path.name}" + (f" (SHARDS R={sample_rate:g})" if sample_rate else ""))


def _exact_grid(trace_path: Path, source, partition: bool, belady: bool, sample_rate, executor: str,
                address, parts: int, chunk_requests, kw: dict):
    """The one-pass grid (streamed, also from a partition folder), with Belady if asked (which
    streams too, through two spill files, after checking its disk and memory estimates)."""
    from simkv.sizing.grid import lru_grid

    if partition:  # read back in request order from its shards, chunk by chunk
        source = TraceSource.of(trace_path)
    with ChunkProgress(f"sweep {trace_path.name}", source.n_requests_hint()) as progress:
        frame = lru_grid(source, sample_rate=sample_rate, executor=executor, address=address,
                         ttl_chunks=parts, chunk_requests=chunk_requests, on_chunk=progress,
                         **kw)
    if belady:
        from simkv.sizing.belady import belady_curve

        bel = belady_curve(source, capacities_blocks=kw["capacities_blocks"],
                           capacities_bytes=kw["capacities_bytes"], model=kw["model"],
                           chunk_requests=chunk_requests)
        frame["belady_block_hit_ratio"] = np.repeat(bel["belady_block_hit_ratio"].to_numpy(),
                                                    len(kw["ttls_s"]))
    return frame


def _output(frame, out: Path | None, json_out: bool, title: str | None) -> None:
    """Parquet to --out, then JSON, a table of ratios (title given) or the frame as text."""
    if out is not None:
        with atomic_path(out) as tmp:
            frame.to_parquet(tmp, index=False)
    if json_out:
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        print_json(records)
    elif title is None:
        sys.stdout.write(frame.to_string(index=False) + "\n")
    else:
        _print_grid(frame, title)


def _store_grid(trace_path: Path, format: str | None, shards: int, policy: str, cap_blocks,
                cap_bytes, ttl_list, model: str | None, executor: str, address: str | None, *,
                conflicts: bool):
    """``--store-shards``: the grid of a sharded store (simkv/sizing/storesweep.py)."""
    from simkv.sizing.storeshards import partition_for
    from simkv.sizing.storesweep import store_grid

    if conflicts:
        raise InputError("a sharded store's grid is exact: no --sample-rate, --shards-error or "
                         "--belady with it", where="--store-shards")
    with partition_for(trace_path, shards, format=format) as folder:
        return store_grid(folder, capacities_blocks=cap_blocks, capacities_bytes=cap_bytes,
                          ttls_s=ttl_list, policy=policy, model=model, executor=executor,
                          address=address)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_cmd)
