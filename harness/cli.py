"""``simkv-harness``: serve a CPU vLLM (+ LMCache), replay a trace on endpoints, validate simkv.

    simkv-harness serve --model-config tiny-llama-2l [--lmcache] --engine-config-out engine.json
    simkv-harness replay --trace T --endpoint URL [--endpoint URL2] --out results/
    simkv-harness validate --trace T --endpoint URL [--lmcache-metrics URL --engine-config engine.json]

A thin layer: options in, the library (:mod:`harness.measure`, :mod:`harness.validate`,
:mod:`harness.launcher`) does the work, results out.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import typer

from harness.client import api_key
from harness.engineconfig import EngineConfig, load_engine_config
from harness.launcher import ENGINE_CORE_NICE, EngineError, EngineStack
from harness.measure import ReplayOptions, replay_and_measure
from harness.validate import DEFAULT_TOKEN_BUDGET, ValidateOptions, compare, compare_pooled
from simkv.atomicio import atomic_write_text, atomic_writer
from simkv.cli.common import print_json, print_table
from simkv.errors import InputError
from simkv.units import parse_size

app = typer.Typer(name="simkv-harness", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Replay simkv traces on a real vLLM (+ LMCache) and compare with simkv.")


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


# ------------------------------------------------------------------ serve
@app.command()
def serve(model_config: str = typer.Option("tiny-llama-2l", help="catalogue name (tiny-llama-2l) or a directory with config.json"),
          lmcache: bool = typer.Option(False, help="also start an LMCache server (multi-process mode)"),
          kv_cache_bytes: str = typer.Option("8MiB", help="vLLM's KV cache size"),
          block_size: int = typer.Option(None, help="vLLM block size (CPU default 128)"),
          port: int = typer.Option(8000), max_model_len: int = typer.Option(4096),
          lmcache_port: int = typer.Option(5555), lmcache_http_port: int = typer.Option(8080),
          lmcache_l1_gb: float = typer.Option(1.0, help="LMCache L1 size in GiB (its --l1-size-gb)"),
          lmcache_chunk_tokens: int = typer.Option(256, help="LMCache chunk size in tokens"),
          engine_config: Path = typer.Option(None, help="start the engine an engine config describes (overrides the options above)"),
          engine_config_out: Path = typer.Option(None, help="write the engine config here (validate --engine-config reads it)"),
          engine_python: str = typer.Option(None, help="engine interpreter (default .venv-engine/bin/python or $SIMKV_ENGINE_PYTHON)"),
          engine_core_nice: int = typer.Option(ENGINE_CORE_NICE, min=0, max=19, help="niceness for vLLM's busy-waiting engine-core process, so the API server is not starved on a small machine (0: leave it)")) -> None:
    """Start vLLM with random weights (and LMCache); stop everything on Ctrl-C or SIGTERM."""
    cfg = load_engine_config(engine_config) if engine_config is not None else EngineConfig(
        model_config=model_config, kv_cache_bytes=parse_size(kv_cache_bytes, where="--kv-cache-bytes"),
        block_size=block_size, max_model_len=max_model_len, lmcache=lmcache,
        lmcache_chunk_tokens=lmcache_chunk_tokens, lmcache_l1_gb=lmcache_l1_gb)
    opts = cfg.serve_options(port=port, lmcache_port=lmcache_port,
                             lmcache_http_port=lmcache_http_port, engine_python=engine_python,
                             engine_core_nice=engine_core_nice)
    if engine_config_out is not None:
        cfg.save(engine_config_out)
    stack = EngineStack(opts)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.start()
        _say(f"vLLM ready at {stack.endpoint}" + (f"; LMCache metrics at {stack.lmcache_metrics_url}"
                                                  f", its log at {stack.lmcache_log_path} "
                                                  "(validate --lmcache-log)"
                                                  if cfg.lmcache else "") + " (Ctrl-C stops)")
        while stack.alive():
            time.sleep(1.0)
        _say("a server exited; stopping the rest")
    except EngineError as exc:
        raise InputError(str(exc).splitlines()[0]) from None
    except KeyboardInterrupt:
        _say("stopping")
    finally:
        stack.stop()


# ------------------------------------------------------------------ shared options
_TRACE = typer.Option(..., "--trace", help="a trace file (any simkv format)")
_ENDPOINT = typer.Option(..., "--endpoint", help="base URL of a vLLM server (repeatable)")


def _progress(every: int = 20):
    """A callback printing a line every ``every`` finished requests (logs and terminals)."""
    state = {"n": 0}

    def on_record(_rec: dict) -> None:
        state["n"] += 1
        if state["n"] % every == 0:
            _say(f"  {state['n']} requests done")

    return on_record


def _replay_options(endpoint, out, **kw) -> ReplayOptions:
    return ReplayOptions(endpoints=tuple(endpoint), out=out, **kw)


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


# ------------------------------------------------------------------ replay
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
           allow_skip: bool = typer.Option(False, help="run even when more than 5% of the requests cannot"),
           api_key_env: str = typer.Option("SIMKV_API_KEY", help="env var holding the API key"),
           api_key_file: Path = typer.Option(None, help="file holding the API key"),
           timeout_s: float = typer.Option(600.0, help="per-request timeout"),
           json_out: bool = typer.Option(False, "--json")) -> None:
    """Replay a trace; records appended to OUT/records.jsonl as requests finish."""
    opts = _replay_options(endpoint, out, time_scale=time_scale, concurrency=concurrency,
                           max_requests=max_requests, max_tokens=max_tokens,
                           output_scale=output_scale, routing=routing, resume=resume, force=force,
                           vocab=vocab, salt=salt, warmup=warmup, allow_skip=allow_skip,
                           api_key=api_key(api_key_env, api_key_file), timeout_s=timeout_s)
    m = replay_and_measure(trace, opts, say=_say, on_record=_progress())
    summary = dict(m.summary, server_histograms=m.histograms)
    _write_json(out / "summary.json", summary)
    if json_out:
        print_json(summary)
    else:
        print_table("replay", [(k, v) for k, v in summary.items() if not isinstance(v, dict | list)])


# ------------------------------------------------------------------ validate
@app.command()
def validate(trace: Path = _TRACE, endpoint: list[str] = _ENDPOINT,
             lmcache_metrics: list[str] = typer.Option([], help="LMCache server /metrics URL (one per endpoint) when vLLM runs with LMCache"),
             engine_config: Path = typer.Option(None, help="the engine config serve wrote (LMCache chunk size and L1)"),
             lmcache_log: Path = typer.Option(None, help="the LMCache server's log (serve prints where): its own lookup, store and loop-wake times for the L1 model"),
             time_scale: float = typer.Option(0.0, help="multiply trace gaps (0: back to back)"),
             concurrency: int = typer.Option(1, help="requests in flight at most"),
             max_requests: int = typer.Option(None), max_tokens: int = typer.Option(None),
             output_scale: float = typer.Option(1.0), routing: str = typer.Option("round_robin"),
             out: Path = typer.Option(Path("results"), help="directory for records and results"),
             resume: bool = typer.Option(False), force: bool = typer.Option(False),
             vocab: int = typer.Option(4096), salt: int = typer.Option(0),
             allow_skip: bool = typer.Option(False, help="run even when more than 5% of the requests cannot"),
             calibration: Path = typer.Option(None, help="a latency calibration (simkv calibrate) for predicted TTFT"),
             token_budget: int = typer.Option(DEFAULT_TOKEN_BUDGET, help="vLLM's max_num_batched_tokens (CPU server default 2048)"),
             model_config: str = typer.Option("tiny-llama-2l", help="the served model's config (when no --engine-config)"),
             api_key_env: str = typer.Option("SIMKV_API_KEY"), api_key_file: Path = typer.Option(None),
             repeats: int = typer.Option(1, min=1, help="replay this many times (salts SALT, SALT+1, ...; each into OUT/replay-K) and pool their TTFT"),
             timeout_s: float = typer.Option(600.0), json_out: bool = typer.Option(False, "--json")) -> None:
    """Replay, then compare measured prefix hits and TTFT with simkv's whole-model prediction."""
    engine = load_engine_config(engine_config) if engine_config is not None else None
    ropts = _replay_options(endpoint, out, time_scale=time_scale, concurrency=concurrency,
                            max_requests=max_requests, max_tokens=max_tokens,
                            output_scale=output_scale, routing=routing, resume=resume, force=force,
                            vocab=vocab, salt=salt, warmup=True, allow_skip=allow_skip,
                            api_key=api_key(api_key_env, api_key_file), timeout_s=timeout_s,
                            lmcache_metrics=tuple(lmcache_metrics), require_metrics=True)
    vopts = ValidateOptions(ropts, engine=engine, calibration=calibration,
                            token_budget=token_budget, model_config=model_config,
                            lmcache_log=lmcache_log)
    if lmcache_log is not None and not lmcache_metrics:
        raise InputError("--lmcache-log goes with --lmcache-metrics (an LMCache server)",
                         where="--lmcache-log")
    if lmcache_log is not None and not lmcache_log.is_file():
        raise InputError("not found", source=lmcache_log, where="--lmcache-log")
    runs, ms = [], []
    for k in range(repeats):
        rk = ropts if repeats == 1 else replace(ropts, out=out / f"replay-{k + 1}", salt=salt + k)
        if repeats > 1:
            _say(f"replay {k + 1} of {repeats} (salt {rk.salt}) into {rk.out}")
        m = replay_and_measure(trace, rk, say=_say, on_record=_progress())
        _write_json(rk.out / "summary.json", dict(m.summary, server_histograms=m.histograms))
        runs.append(replace(vopts, replay=rk))
        ms.append(m)
    if repeats == 1:
        result = compare(ms[0], runs[0]).as_dict()
    else:
        pooled = compare_pooled(ms, runs)
        for rk, r in zip(runs, pooled.replays, strict=True):
            _write_json(rk.replay.out / "validate.json", r.as_dict())
        result = pooled.as_dict()
    _write_json(out / "validate.json", result)
    flat = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
    with atomic_writer(out / "validate.parquet") as fh:
        pd.DataFrame([flat]).to_parquet(fh, index=False)
    if json_out:
        print_json(result)
    else:
        print_table("measured vs predicted", list(flat.items()))


@app.command("probe-trace")
def probe_trace_cmd(out: Path = typer.Option(..., "--out", help="where to write the probe trace (.parquet)"),
                    max_prompt_tokens: int = typer.Option(4096, min=1, help="the engine's longest prompt (its max model length)"),
                    cold: int = typer.Option(72, min=1, help="cold prompts, lengths log-spaced to the longest"),
                    warm_share: float = typer.Option(0.25, help="share of cold prompts followed by a warm one"),
                    seed: int = typer.Option(0), force: bool = typer.Option(False, help="replace --out")) -> None:
    """Write a calibration probe: prompts spanning the engine's lengths (replay it one at a time
    beside the calibration trace and give both to `simkv calibrate`)."""
    from harness.probe import probe_trace
    from simkv.cli.common import check_output_path
    from simkv.trace import save_trace

    check_output_path(out, force=force)
    trace = probe_trace(max_prompt_tokens, n_cold=cold, warm_share=warm_share, seed=seed)
    save_trace(trace, out)
    _say(f"wrote {trace.n_requests} requests to {out}")


def main(argv: list[str] | None = None) -> None:
    from simkv.cli.main import run

    raise SystemExit(run(app, argv, prog="simkv-harness"))


if __name__ == "__main__":
    main()
