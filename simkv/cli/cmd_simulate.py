"""``simkv simulate``: one cache configuration over a trace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from simkv.atomicio import atomic_writer
from simkv.cache import CacheConfig
from simkv.cache.config import DEFAULT_BLEND_RECOMPUTE_SHARE
from simkv.cache.engine import simulate_stream
from simkv.cli.common import check_output_path, print_json, print_table, stage
from simkv.cli.progress import ChunkProgress
from simkv.errors import InputError
from simkv.trace.records import RecordsWriter
from simkv.trace.shardset import is_partition
from simkv.trace.stream import TraceSource, check_chunk_requests
from simkv.units import parse_duration, parse_size


def build_cache_config(capacity: str | None, capacity_blocks: int | None, policy: str,
                       ttl: str | None, ttl_mode: str, reuse: str = "prefix",
                       blend_share: float = 0.0) -> CacheConfig:
    """Validated CacheConfig from CLI strings (shared by the commands that take a cache)."""
    if capacity is not None and capacity_blocks is not None:
        raise InputError("give --capacity or --capacity-blocks, not both", where="--capacity")
    if capacity_blocks is not None and capacity_blocks < 0:
        raise InputError("must be >= 0", where="--capacity-blocks")
    from simkv.cache.policies import POLICIES

    POLICIES.get(policy, where="--policy")
    return CacheConfig(
        capacity_bytes=None if capacity is None else parse_size(capacity, where="--capacity"),
        capacity_blocks=capacity_blocks, policy=policy,
        ttl_s=parse_duration(ttl, where="--ttl") if ttl is not None else None,
        ttl_mode=ttl_mode, reuse=reuse, blend_recompute_share=blend_share,
    )


def _simulate_store(trace_path: Path, format: str | None, cfg: CacheConfig, shards: int | None,
                    model: str | None, executor: str, address: str | None, latency: bool):
    """``--store-shards``: K independent store nodes, each fed only its shard (docs/sizing.md)."""
    if latency:
        raise InputError("TTFT is not modelled for a sharded store", where="--latency")
    from simkv.sizing.storeshards import simulate_store_shards_at

    with stage(f"simulating a store over {shards or 'its'} shards ({cfg.describe()})"):
        return simulate_store_shards_at(trace_path, cfg, shards=shards, format=format, model=model,
                                        executor=executor, address=address)


def simulate_cmd(
    trace_path: Path = typer.Option(..., "--trace", help="Trace file."),
    format: str | None = typer.Option(None, "--format", help="mooncake | parquet | ... (default: from suffix)."),
    capacity: str | None = typer.Option(None, "--capacity", help="Cache size in bytes: 10GiB, 10 GB, 1e9 (needs a model)."),
    capacity_blocks: int | None = typer.Option(None, "--capacity-blocks", help="Cache size in blocks, whatever their bytes."),
    model: str | None = typer.Option(None, "--model", help="Model for a trace that names none (catalogue name or config.json)."),
    policy: str = typer.Option("lru", "--policy", help="Eviction policy: lru, fifo, lfu, vllm."),
    ttl: str | None = typer.Option(None, "--ttl", help="Time to live: 300, 5m, 1h, inf."),
    ttl_mode: str = typer.Option("refresh_on_hit", "--ttl-mode", help="refresh_on_hit | from_write."),
    reuse: str = typer.Option("prefix", "--reuse", help="prefix | chunk (CacheBlend-style, needs content hashes)."),
    blend_share: float = typer.Option(DEFAULT_BLEND_RECOMPUTE_SHARE, "--blend-recompute-share", help="Share of non-prefix chunk-hit tokens recomputed (chunk reuse)."),
    latency: bool = typer.Option(False, "--latency", help="Add TTFT from the latency model and serving simulation."),
    gpu: str = typer.Option("H100", "--gpu", help="GPU for --latency."),
    replicas: int = typer.Option(1, "--replicas", help="Serving replicas for --latency."),
    routing: str = typer.Option("round_robin", "--routing", help="round_robin | least_loaded | prefix_aware (for --latency)."),
    tier: str = typer.Option("hbm", "--tier", help="Where cached KV lives for --latency: hbm, cpu, nvme, remote, ... (load time)."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree per replica for --latency."),
    calibration: Path | None = typer.Option(None, "--calibration", help="calib.yaml from `simkv calibrate`."),
    records_out: Path | None = typer.Option(None, "--records", help="Write per-request records (Parquet)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --records if it exists."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    store_shards: int | None = typer.Option(None, "--store-shards", help="Simulate a store sharded over K nodes by block hash (K caches of capacity C/K); --trace may be a `simkv trace partition` folder."),
    executor: str = typer.Option("local", "--executor", help="Where --store-shards nodes run: local (processes) | ray | inline."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address HOST:PORT for --executor ray (default: a private local Ray)."),
    chunk_requests: int | None = typer.Option(None, "--chunk-requests", help="Requests read and simulated per chunk (memory: one chunk plus per-block state; default 65536)."),
) -> None:
    """Simulate one cache configuration over a trace and print the summary."""
    if capacity is None and capacity_blocks is None:
        raise InputError("give a cache size: --capacity SIZE (with a model) or --capacity-blocks N",
                         where="--capacity")
    if records_out is not None:
        check_output_path(records_out, force=force, what="--records")
    if replicas < 1:
        raise InputError("must be >= 1", where="--replicas")
    cfg = build_cache_config(capacity, capacity_blocks, policy, ttl, ttl_mode,
                             reuse, blend_share if reuse == "chunk" else 0.0)
    check_chunk_requests(chunk_requests)
    if store_shards is not None or is_partition(trace_path):
        result = _simulate_store(trace_path, format, cfg, store_shards, model, executor, address,
                                 latency)
        if records_out is not None:
            with atomic_writer(records_out, "wb") as fh:
                result.records.to_parquet(fh, index=False)
    else:
        opts = SimulateOptions(cfg=cfg, model=model, chunk_requests=chunk_requests,
                               records_out=records_out,
                               latency=LatencyOptions(gpu=gpu, replicas=replicas, routing=routing,
                                                      calibration=calibration, tier=tier, tp=tp)
                               if latency else None)
        result = _simulate_one(TraceSource.of(trace_path, format), trace_path.name, opts)
    summary = dict(result.summary_dict)
    if model is not None:
        summary["model"] = model
    if json_out:
        print_json(summary)
    else:
        print_table(f"simulate {trace_path.name}: {cfg.describe()}", list(summary.items()))


@dataclass(frozen=True)
class LatencyOptions:
    """``--latency``'s serving settings (see ``simkv.latency.api.simulate_with_latency``)."""

    gpu: str = "H100"
    replicas: int = 1
    routing: str = "round_robin"
    calibration: Path | None = None
    tier: str = "hbm"
    tp: int = 1


@dataclass(frozen=True)
class SimulateOptions:
    """One store's simulation: the cache, the model, how to read and what to write."""

    cfg: CacheConfig
    model: str | None = None
    chunk_requests: int | None = None
    records_out: Path | None = None
    latency: LatencyOptions | None = None


def _simulate_one(source: TraceSource, name: str, opts: SimulateOptions):
    """One store, streamed chunk by chunk (with ``--latency`` through the serving simulation
    too); records, when asked for, are written as each chunk completes."""
    cfg, lat = opts.cfg, opts.latency
    with ChunkProgress(f"simulate {name}", source.n_requests_hint()) as progress, \
            RecordsWriter(opts.records_out) as sink:
        records = sink if opts.records_out is not None else None
        if lat is not None:
            from simkv.latency.api import simulate_with_latency

            return simulate_with_latency(source, cfg, model=opts.model, gpu=lat.gpu,
                                         replicas=lat.replicas, routing=lat.routing,
                                         calibration=lat.calibration, tier=lat.tier,
                                         tensor_parallel=lat.tp,
                                         chunk_requests=opts.chunk_requests, keep=False,
                                         sink=records, on_chunk=progress)
        return simulate_stream(source, cfg, model=opts.model, chunk_requests=opts.chunk_requests,
                               keep=False, sink=records, on_chunk=progress)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
