"""``simkv-harness``: serve a CPU vLLM (+ LMCache), replay a trace on endpoints, validate simkv.

    simkv-harness serve --model-config tiny-llama-2l [--lmcache] [--kv-cache-bytes 8MiB]
    simkv-harness replay --trace T --endpoint URL [--endpoint URL2] --out results/
    simkv-harness validate --trace T --endpoint URL [--lmcache-metrics URL] --json
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import typer

from harness.launcher import EngineError, EngineStack, ServeOptions
from harness.metrics import (
    LMCACHE_REQUIRED,
    VLLM_CONNECTOR_REQUIRED,
    VLLM_REQUIRED,
    MetricsError,
    Snapshot,
    cache_deltas,
    cache_info,
    lmcache_deltas,
    served_model,
)
from harness.netio import EndpointError, check_url, request_text
from harness.plan import PlannedRequest, PlanOptions, build_plan
from harness.predict import EngineCacheSpec, combine, predict
from harness.prompts import PromptBuilder
from harness.replay import (
    ClientOptions,
    ReplayResult,
    ServerDied,
    read_records,
    replay_async,
    summarize,
)
from simkv.atomicio import atomic_path, atomic_write_text
from simkv.cli.common import err_console, print_json, print_table, progress_enabled
from simkv.errors import InputError
from simkv.trace import load_trace
from simkv.units import parse_size
from simkv.validate import input_file

MAX_KEY_CHARS = 4096

app = typer.Typer(name="simkv-harness", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Replay simkv traces on a real vLLM (+ LMCache) and compare with simkv.")


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


# ------------------------------------------------------------------ serve
@app.command()
def serve(model_config: str = typer.Option(..., help="catalogue name (tiny-llama-2l) or a directory with config.json"),
          lmcache: bool = typer.Option(False, help="also start an LMCache server (multi-process mode)"),
          kv_cache_bytes: str = typer.Option("8MiB", help="vLLM's KV cache size"),
          block_size: int = typer.Option(None, help="vLLM block size (CPU default 128)"),
          port: int = typer.Option(8000), max_model_len: int = typer.Option(4096),
          lmcache_port: int = typer.Option(5555), lmcache_http_port: int = typer.Option(8080),
          lmcache_l1_gb: float = typer.Option(1.0),
          engine_python: str = typer.Option(None, help="engine interpreter (default .venv-engine/bin/python or $SIMKV_ENGINE_PYTHON)")) -> None:
    """Start vLLM with random weights (and LMCache); stop everything on Ctrl-C or SIGTERM."""
    opts = ServeOptions(model_config=model_config, port=port,
                        kv_cache_bytes=parse_size(kv_cache_bytes, where="--kv-cache-bytes"),
                        block_size=block_size, max_model_len=max_model_len, lmcache=lmcache,
                        lmcache_port=lmcache_port, lmcache_http_port=lmcache_http_port,
                        lmcache_l1_gb=lmcache_l1_gb, engine_python=engine_python)
    stack = EngineStack(opts)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.start()
        _say(f"vLLM ready at {stack.endpoint}" + (f"; LMCache metrics at {stack.lmcache_metrics_url}"
                                                  if lmcache else "") + " (Ctrl-C stops)")
        while stack.alive():
            time.sleep(1.0)
        _say("a server exited; stopping the rest")
    except EngineError as exc:
        raise InputError(str(exc).splitlines()[0]) from None
    except KeyboardInterrupt:
        _say("stopping")
    finally:
        stack.stop()


# ------------------------------------------------------------------ shared replay machinery
def _api_key(env: str | None, file: Path | None) -> str | None:
    if file is not None:
        input_file(file, "API key file", where="--api-key-file")
        try:
            return file.read_text(encoding="utf-8")[:MAX_KEY_CHARS + 1].strip() or None
        except OSError as exc:
            raise InputError(f"cannot read API key file: {exc.strerror}", source=file) from None
        except UnicodeDecodeError:
            raise InputError("API key file is not UTF-8 text", source=file) from None
    return os.environ.get(env) if env else None


def _http(url: str, *, method: str = "GET", key: str | None = None, timeout_s: float = 10.0) -> str:
    return request_text(url, method=method, data=b"" if method == "POST" else None, key=key,
                        timeout_s=timeout_s)


def _scrape(url: str, key: str | None = None) -> Snapshot:
    return Snapshot.parse(_http(url, key=key), source=url)


def _served(endpoint: str, key: str | None) -> tuple[str, int | None]:
    return served_model(f"{endpoint}/v1/models", _http(f"{endpoint}/v1/models", key=key))


def _warm_and_reset(endpoint: str, model: str, salt: int, key: str | None) -> bool:
    """One throwaway request (its own salt), then reset the prefix cache when the server allows
    (vLLM dev mode); returns whether the reset happened."""
    body = json.dumps({"model": model, "prompt": [3 + (salt * 7919 + k) % 4000 for k in range(300)],
                       "max_tokens": 2, "ignore_eos": True}).encode()
    request_text(f"{endpoint}/v1/completions", method="POST", data=body, key=key,
                 timeout_s=600.0, headers={"Content-Type": "application/json"})
    try:
        _http(f"{endpoint}/reset_prefix_cache?reset_external=true", method="POST", key=key)
        return True
    except EndpointError:
        return False


class _DuringScraper:
    """Scrapes every endpoint's /metrics every ``interval_s`` while the replay runs (a thread:
    the replay's event loop stays undisturbed), keeping the key samples with their time."""

    def __init__(self, endpoints: tuple[str, ...], key: str | None, interval_s: float = 5.0) -> None:
        self.endpoints, self.key, self.interval_s = endpoints, key, interval_s
        self.rows: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-scraper", daemon=True)
        self._t0 = time.perf_counter()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            for e in self.endpoints:
                row = {"endpoint": e, "when": "during",
                       "t_s": round(time.perf_counter() - self._t0, 3)}
                try:
                    row["samples"] = _key_samples(_scrape(f"{e}/metrics", self.key))
                except (MetricsError, EndpointError) as exc:  # a dying server is the replay's to report
                    row["error"] = str(exc)
                self.rows.append(row)

    def __enter__(self) -> _DuringScraper:
        if self.interval_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 30)


def _run_replay(plan: list[PlannedRequest], out_dir: Path, copts: ClientOptions,
                resume: bool) -> ReplayResult:
    records_path = out_dir / "records.jsonl"
    total = len(plan)
    done0 = len(read_records(records_path)) if resume else 0
    counter = {"n": done0}
    bar = None
    if progress_enabled():  # a live bar on a terminal; a line every 5% in logs
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        bar = Progress("replay", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       console=err_console, transient=True)
        task = bar.add_task("replay", total=total, completed=done0)

    def progress(_rec: dict) -> None:
        counter["n"] += 1
        if bar is not None:
            bar.update(task, completed=counter["n"])
        elif counter["n"] % max(1, total // 20) == 0 or counter["n"] == total:
            _say(f"  {counter['n']}/{total} requests")

    try:
        if bar is not None:
            bar.start()
        return asyncio.run(replay_async(plan, records_path, copts, resume=resume,
                                        on_record=progress))
    except ServerDied as exc:
        raise InputError(f"replay stopped: {exc}") from None
    finally:
        if bar is not None:
            bar.stop()


def _write_parquet(out_dir: Path) -> pd.DataFrame:
    recs = read_records(out_dir / "records.jsonl")
    df = pd.DataFrame(recs)
    if len(df):
        df = df.sort_values("request", kind="stable").reset_index(drop=True)
        with atomic_path(out_dir / "records.parquet") as tmp:
            df.to_parquet(tmp, index=False)
    return df


def _check_out(out: Path, resume: bool, force: bool) -> Path:
    """Refuse a bad --out before any work; touches nothing (see _prepare_out)."""
    rec = out / "records.jsonl"
    try:
        exists = rec.exists()
        if out.exists() and not out.is_dir():
            raise InputError("exists and is not a directory", source=out, where="--out")
    except OSError as exc:  # a name too long, a path through a file, ...
        raise InputError(f"cannot use this folder ({exc.strerror or exc})", where="--out") from None
    if exists and not (resume or force):
        raise InputError("holds records of an earlier run; give --resume to continue it or "
                         "--force to start over", source=out, where="--out")
    return out


def _prepare_out(out: Path, resume: bool, force: bool) -> Path:
    """Create --out and, with --force, drop earlier records: only once the endpoints answered."""
    _check_out(out, resume, force)
    rec = out / "records.jsonl"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder ({exc.strerror or exc})", source=out,
                         where="--out") from None
    if force and not resume and rec.exists():
        rec.unlink()
    return out


# ------------------------------------------------------------------ replay
_TRACE = typer.Option(..., "--trace", help="a trace file (any simkv format)")
_ENDPOINT = typer.Option(..., "--endpoint", help="base URL of a vLLM server (repeatable)")


@app.command()
def replay(trace: Path = _TRACE, endpoint: list[str] = _ENDPOINT,
           time_scale: float = typer.Option(1.0, help="multiply trace gaps (0: back to back)"),
           concurrency: int = typer.Option(None, help="requests in flight at most (default unlimited)"),
           max_requests: int = typer.Option(None), max_tokens: int = typer.Option(None, help="cap on output tokens"),
           output_scale: float = typer.Option(1.0, help="scale the trace's output lengths"),
           routing: str = typer.Option("round_robin", help="round_robin | prefix"),
           out: Path = typer.Option(Path("results"), help="directory for records.jsonl/.parquet"),
           resume: bool = typer.Option(False, help="continue an interrupted replay"),
           force: bool = typer.Option(False, help="replace earlier records in --out"),
           vocab: int = typer.Option(4096, help="token ids used are < this (within the model's vocabulary)"),
           salt: int = typer.Option(0, help="changes every prompt token (keeps runs apart)"),
           warmup: bool = typer.Option(True, help="one throwaway request per endpoint first"),
           api_key_env: str = typer.Option("SIMKV_API_KEY", help="env var holding the API key"),
           api_key_file: Path = typer.Option(None, help="file holding the API key"),
           timeout_s: float = typer.Option(600.0, help="per-request timeout"),
           json_out: bool = typer.Option(False, "--json")) -> None:
    """Replay a trace; records appended to OUT/records.jsonl as requests finish."""
    result = _replay_and_measure(trace, endpoint, time_scale, concurrency, max_requests, max_tokens,
                                 output_scale, routing, out, resume, force, vocab, salt, warmup,
                                 _api_key(api_key_env, api_key_file), timeout_s, lmcache_metrics=[],
                                 require_metrics=False)
    summary = result["summary"]
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    if json_out:
        print_json(summary)
    else:
        print_table("replay", [(k, v) for k, v in summary.items() if not isinstance(v, dict)])


def _replay_and_measure(trace_path, endpoints, time_scale, concurrency, max_requests, max_tokens,
                        output_scale, routing, out, resume, force, vocab, salt, warmup, key,
                        timeout_s, *, lmcache_metrics: list[str], require_metrics: bool) -> dict:
    tr = load_trace(trace_path)
    _check_out(out, resume, force)
    endpoints = tuple(check_url(e.rstrip("/")) for e in endpoints)
    for u in lmcache_metrics:
        check_url(u, where="--lmcache-metrics")
    served = [_served(e, key) for e in endpoints]
    model = served[0][0]
    lens = [m for _, m in served if m]
    popts = PlanOptions(endpoints=endpoints, time_scale=time_scale, max_requests=max_requests,
                        max_tokens_cap=max_tokens, output_scale=output_scale, routing=routing,
                        max_model_len=min(lens) if lens else None, vocab_size=vocab, salt=salt)
    plan = build_plan(tr, popts)
    if warmup and not resume:
        resets = [_warm_and_reset(e, model, salt + 1_000_003, key) for e in endpoints]
        if not all(resets):
            _say("note: could not reset the prefix cache (start vLLM with VLLM_SERVER_DEV_MODE=1); "
                 "earlier prompts may still be cached: use a fresh --salt per run")
    before = {e: _scrape(f"{e}/metrics", key) for e in endpoints}
    lm_before = {u: _scrape(u) for u in lmcache_metrics}
    if require_metrics:
        for e, snap in before.items():
            snap.require(VLLM_REQUIRED + (VLLM_CONNECTOR_REQUIRED if lmcache_metrics else ()), e)
        for u, snap in lm_before.items():
            snap.require(LMCACHE_REQUIRED, u)
    out = _prepare_out(out, resume, force)  # every endpoint answered: now touch earlier records
    copts = ClientOptions(model=model, timeout_s=timeout_s, concurrency=concurrency, api_key=key)
    t = time.perf_counter()
    _say(f"replaying {len(plan)} requests on {len(endpoints)} endpoint(s)")
    with _DuringScraper(endpoints, key) as during:
        _run_replay(plan, out, copts, resume)
    wall = time.perf_counter() - t
    after = {e: _scrape(f"{e}/metrics", key) for e in endpoints}
    lm_after = {u: _scrape(u) for u in lmcache_metrics}
    df = _write_parquet(out)
    records = df.to_dict("records") if len(df) else []
    summary = summarize(records)
    summary["wall_s"] = wall
    summary["skipped_too_long"] = int(sum(1 for r in plan if r.skip_reason))
    deltas = {e: cache_deltas(before[e], after[e], connector=bool(lmcache_metrics)) for e in endpoints}
    lm = {u: lmcache_deltas(lm_before[u], lm_after[u]) for u in lmcache_metrics}
    with open(out / "metrics.jsonl", "a") as fh:
        for e in endpoints:
            fh.write(json.dumps({"endpoint": e, "when": "before", "samples": _key_samples(before[e])}) + "\n")
        for row in during.rows:
            fh.write(json.dumps(row) + "\n")
        for e in endpoints:
            fh.write(json.dumps({"endpoint": e, "when": "after", "samples": _key_samples(after[e])}) + "\n")
    return {"trace": tr, "plan": plan, "records": records, "summary": summary, "deltas": deltas,
            "lmcache": lm, "after": after, "df": df}


def _key_samples(snap: Snapshot) -> dict:
    keep = ("vllm:prefix_cache", "vllm:external_prefix_cache", "vllm:prompt_tokens_cached_by_source",
            "vllm:kv_cache_usage_perc", "vllm:num_preemptions")
    return {f"{n}{dict(lab)}": v for (n, lab), v in snap.samples.items() if n.startswith(keep)}


# ------------------------------------------------------------------ validate
@app.command()
def validate(trace: Path = _TRACE, endpoint: list[str] = _ENDPOINT,
             lmcache_metrics: list[str] = typer.Option([], help="LMCache server /metrics URL (one per endpoint) when vLLM runs with LMCache"),
             lmcache_chunks: int = typer.Option(None, help="LMCache capacity in chunks (default: unlimited)"),
             lmcache_chunk_tokens: int = typer.Option(256),
             time_scale: float = typer.Option(0.0, help="multiply trace gaps (0: back to back)"),
             concurrency: int = typer.Option(1, help="requests in flight (1: the prediction's assumption)"),
             max_requests: int = typer.Option(None), max_tokens: int = typer.Option(None),
             output_scale: float = typer.Option(1.0), routing: str = typer.Option("round_robin"),
             out: Path = typer.Option(Path("results"), help="directory for records and results"),
             resume: bool = typer.Option(False), force: bool = typer.Option(False),
             vocab: int = typer.Option(4096), salt: int = typer.Option(0),
             calibration: Path = typer.Option(None, help="a latency calibration (simkv calibrate) for predicted TTFT"),
             api_key_env: str = typer.Option("SIMKV_API_KEY"), api_key_file: Path = typer.Option(None),
             timeout_s: float = typer.Option(600.0), json_out: bool = typer.Option(False, "--json")) -> None:
    """Replay, then compare measured prefix hits and TTFT with simkv's prediction."""
    key = _api_key(api_key_env, api_key_file)
    res = _replay_and_measure(trace, endpoint, time_scale, concurrency, max_requests, max_tokens,
                              output_scale, routing, out, resume, force, vocab, salt, True, key,
                              timeout_s, lmcache_metrics=list(lmcache_metrics), require_metrics=True)
    result = compare(res, lmcache=bool(lmcache_metrics), lmcache_chunks=lmcache_chunks,
                     lmcache_chunk_tokens=lmcache_chunk_tokens, calibration=calibration)
    atomic_write_text(out / "validate.json", json.dumps(result, indent=2, default=str))
    with atomic_path(out / "validate.parquet") as tmp:
        pd.DataFrame([{k: v for k, v in result.items()
                       if not isinstance(v, dict | list)}]).to_parquet(tmp, index=False)
    if json_out:
        print_json(result)
    else:
        print_table("measured vs predicted", [(k, v) for k, v in result.items()
                                              if not isinstance(v, dict | list)])


def compare(res: dict, *, lmcache: bool, lmcache_chunks: int | None, lmcache_chunk_tokens: int,
            calibration: Path | None) -> dict:
    """Measured (metric deltas) beside predicted (simkv's vllm policy on the sent tokens)."""
    endpoints = list(res["deltas"])
    infos = {e: cache_info(res["after"][e]) for e in endpoints}
    bts = {i.block_size for i in infos.values()}
    nbs = {i.usable_blocks for i in infos.values()}
    if len(bts) != 1 or len(nbs) != 1:
        raise InputError("endpoints differ in block size or cache blocks; validate them one by one")
    info = next(iter(infos.values()))
    ok = {int(r["request"]) for r in res["records"] if r["status"] == "ok"}
    spec = EngineCacheSpec(info.block_size, info.usable_blocks, lmcache, lmcache_chunk_tokens,
                           lmcache_chunks)
    pred = combine(predict(res["plan"], ok, spec))
    d = res["deltas"]
    q = sum(x["prefix_cache_queries_tokens"] for x in d.values())
    h = sum(x["prefix_cache_hits_tokens"] for x in d.values())
    eq = sum(x["external_prefix_cache_queries_tokens"] for x in d.values())
    eh = sum(x["external_prefix_cache_hits_tokens"] for x in d.values())
    measured = h / q if q else None
    out = {
        "requests_sent": len(ok), "skipped_too_long": res["summary"]["skipped_too_long"],
        "block_tokens": info.block_size, "cache_blocks": info.num_gpu_blocks,
        "measured_prefix_queries_tokens": q, "predicted_prefix_queries_tokens": pred["prompt_tokens"],
        "measured_prefix_hit_ratio": measured,
        "predicted_prefix_hit_ratio": pred["prefix_hit_ratio"],
    }
    out["prefix_hit_abs_error"] = (None if measured is None
                                   else abs(pred["prefix_hit_ratio"] - measured))
    if lmcache:
        m_ext = eh / eq if eq else None
        out.update({"measured_external_hit_tokens": eh, "predicted_external_hit_tokens":
                    pred["external_hit_tokens"], "measured_external_hit_ratio": m_ext,
                    "predicted_external_hit_ratio": pred["external_hit_ratio"],
                    "measured_external_share_of_prompt": eh / q if q else None,
                    "predicted_external_share_of_prompt":
                        pred["external_hit_tokens"] / pred["prompt_tokens"] if pred["prompt_tokens"] else None})
        out["external_hit_abs_error"] = (None if m_ext is None
                                         else abs(pred["external_hit_ratio"] - m_ext))
        out["lmcache_counters"] = res["lmcache"]
    s = res["summary"]
    out.update({"measured_ttft_p50_s": s["ttft_p50_s"], "measured_ttft_p90_s": s["ttft_p90_s"],
                "measured_ttft_p99_s": s["ttft_p99_s"], "predicted_ttft_p50_s": None,
                "predicted_ttft_p90_s": None, "ttft_note": "give --calibration for predicted TTFT"})
    if calibration is not None:
        out.update(_ttft_prediction(res, calibration, info))
    for k in ("ttft_p50", "ttft_p90"):
        m, p = out[f"measured_{k}_s"], out[f"predicted_{k}_s"]
        out[f"{k}_rel_error"] = abs(p - m) / m if (m and p is not None) else None
    if out["measured_prefix_hit_ratio"]:
        out["prefix_hit_rel_error"] = out["prefix_hit_abs_error"] / out["measured_prefix_hit_ratio"]
    out["per_endpoint"] = d
    out["replay"] = s
    return out


def engine_trace(plan: list[PlannedRequest], block_tokens: int):
    """The sent requests as a Trace at the engine's block size (trace request ids kept)."""
    import numpy as np

    from harness.prompts import chained_keys, key_to_u64
    from simkv.trace.model import Trace

    inp, outp, hashes, offs = [], [], [], [0]
    for r in sorted(plan, key=lambda r: r.request):
        keys = [] if r.skip_reason else chained_keys(np.asarray(r.prompt), block_tokens)
        hashes.extend(key_to_u64(k) for k in keys)
        offs.append(len(hashes))
        inp.append(0 if r.skip_reason else len(r.prompt))
        outp.append(r.max_tokens)
    arrival = np.maximum.accumulate(np.asarray([r.scheduled_s for r in sorted(plan, key=lambda r: r.request)]))
    return Trace.from_arrays(block_tokens=block_tokens, arrival_s=arrival, input_tokens=inp,
                             output_tokens=outp, block_offsets=offs,
                             block_hashes=np.asarray(hashes, dtype=np.uint64))


def _ttft_prediction(res: dict, calibration: Path, info) -> dict:
    from simkv.cache import CacheConfig
    from simkv.latency.calibrate import evaluate_prediction

    tr = engine_trace(res["plan"], info.block_size)
    ev = evaluate_prediction(tr, CacheConfig(capacity_blocks=info.usable_blocks, policy="vllm"),
                             res["df"], calibration)
    return {"predicted_ttft_p50_s": ev["predicted_p50_s"], "predicted_ttft_p90_s": ev["predicted_p90_s"],
            "ttft_note": "simkv.latency calibration " + str(calibration), "ttft_evaluation": ev}


def main(argv: list[str] | None = None) -> None:
    from simkv.cli.main import run

    raise SystemExit(run(app, argv, prog="simkv-harness"))


if __name__ == "__main__":
    main()

_ = PromptBuilder  # re-exported for notebooks
