"""GPU probe: measured prefill, cached-prefix prefill, decode and host-to-device copy times.

Runs where only PyTorch and transformers exist (the project's occasional H200 machine has no
vLLM and no room for simkv's dependencies), so it uses the standard library, torch and
transformers only, and reads the model catalogue's config JSON directly:

    python harness/gpu_probe.py --out gpu-records.json            # on the GPU, < 6 minutes
    python harness/gpu_probe.py --tiny --device cpu --out t.json  # the CPU test's small run

Models get random weights (``from_config``; nothing downloaded): ``llama-3.1-8b`` (GQA, all
layers) and an MLA model from ``deepseek-v3``'s config cut to ``--mla-layers`` layers (dense
first layers, then MoE, as in the original).  Measured, each as the median of ``--repeats``
timed runs after one warm-up, with the device synchronised:

- ``prefill``: a prompt of ``tokens`` from scratch;
- ``suffix_prefill``: ``tokens`` new tokens over a ``cached_tokens`` prefix already in
  ``past_key_values`` (a prefix-cache hit);
- ``decode_step``: one token over a ``context_tokens`` cache;
- ``h2d_copy``: ``bytes`` from pinned host memory to the device (a CPU-tier KV load).

Records carry the GPU name, driver, CUDA, torch and transformers versions.  A time budget
(``--budget-s``) skips what would not fit and says so in the file.
``simkv.latency.gpu_profile`` reads the records back.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers

SCHEMA_VERSION = 1
CATALOGUE = Path(__file__).resolve().parent.parent / "simkv" / "models" / "catalogue"
TINY = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "intermediate_size": 128, "vocab_size": 512, "num_hidden_layers": 2,
        "kv_lora_rank": 32, "q_lora_rank": 48, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8,
        "v_head_dim": 16, "n_routed_experts": 4, "moe_intermediate_size": 32,
        "num_experts_per_tok": 2, "first_k_dense_replace": 1}
PLAN = {"full": {"prefill": [512, 1024, 2048, 4096, 8192], "prefix": [0, 1024, 4096, 8192],
                 "suffix": 512, "decode": [1024, 8192], "h2d_bytes": [1 << 26, 1 << 30]},
        "tiny": {"prefill": [16, 32, 64], "prefix": [0, 32], "suffix": 16, "decode": [32],
                 "h2d_bytes": [1 << 20]}}


def load_config(name: str, catalogue: Path) -> dict:
    data = json.loads((catalogue / f"{name}.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def build_model(name: str, raw: dict, *, tiny: bool, mla_layers: int, device: str,
                dtype: torch.dtype):
    """A random-weight causal LM of the catalogue config ``raw`` (cut or shrunk as asked)."""
    cfg = dict(raw)
    mla = cfg.get("model_type") == "deepseek_v3"
    if tiny:  # shrink the fields the config has (GQA models also get a small head_dim)
        cfg.update({k: v for k, v in TINY.items() if k in cfg or (k == "head_dim" and not mla)})
    if mla and not tiny:
        cfg["num_hidden_layers"] = mla_layers
    if mla and tiny:  # 4 experts: one routing group
        cfg.update(n_group=1, topk_group=1, num_key_value_heads=cfg["num_attention_heads"])
    if mla:  # the rotary part of each head is qk_rope_head_dim wide
        cfg["head_dim"] = cfg["qk_rope_head_dim"]
    config = transformers.AutoConfig.for_model(cfg.pop("model_type", "llama"), **cfg)
    with torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    return model, {"model": name, "mla": mla, "layers": int(config.num_hidden_layers),
                   "hidden_size": int(config.hidden_size), "tiny": tiny}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int) -> float:
    """Median seconds of ``repeats`` runs of ``fn`` after one warm-up."""
    fn()
    _sync(device)
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def _ids(n: int, vocab: int, device: str, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (1, n), generator=g).to(device)


def probe_model(model, info: dict, plan: dict, device: str, repeats: int, deadline: float) -> list[dict]:
    vocab = model.config.vocab_size
    out = []

    def record(kind: str, seconds: float | None, **kw) -> None:
        out.append({"kind": kind, **info, **kw, "seconds": seconds,
                    "skipped": seconds is None and "over the time budget" or None})

    with torch.inference_mode():
        for n in plan["prefill"]:
            if time.perf_counter() > deadline:
                record("prefill", None, tokens=n)
                continue
            ids = _ids(n, vocab, device, n)
            record("prefill", timed(lambda ids=ids: model(ids, use_cache=False), device, repeats),
                   tokens=n)
        s = plan["suffix"]
        for c in plan["prefix"]:
            if time.perf_counter() > deadline:
                record("suffix_prefill", None, tokens=s, cached_tokens=c)
                continue
            prefix = _ids(c, vocab, device, 7 + c) if c else None
            cache = model(prefix, use_cache=True).past_key_values if c else None
            suffix = _ids(s, vocab, device, 11)

            def run(cache=cache, suffix=suffix):
                model(suffix, past_key_values=copy.deepcopy(cache) if cache is not None else None,
                      use_cache=True)
            copy_s = timed(lambda cache=cache: copy.deepcopy(cache), device, repeats) if c else 0.0
            record("suffix_prefill", max(timed(run, device, repeats) - copy_s, 0.0), tokens=s,
                   cached_tokens=c)
        for ctx in plan["decode"]:
            if time.perf_counter() > deadline:
                record("decode_step", None, context_tokens=ctx)
                continue
            cache = model(_ids(ctx, vocab, device, 13), use_cache=True).past_key_values
            tok = _ids(1, vocab, device, 17)
            steps = []
            for _ in range(repeats + 1):
                c2 = copy.deepcopy(cache)
                _sync(device)
                t = time.perf_counter()
                model(tok, past_key_values=c2, use_cache=True)
                _sync(device)
                steps.append(time.perf_counter() - t)
            record("decode_step", statistics.median(steps[1:]), context_tokens=ctx)
    return out


def probe_copy(plan: dict, device: str, repeats: int, deadline: float) -> list[dict]:
    out = []
    pin = device.startswith("cuda")
    for n in plan["h2d_bytes"]:
        if time.perf_counter() > deadline:
            out.append({"kind": "h2d_copy", "bytes": n, "seconds": None,
                        "skipped": "over the time budget"})
            continue
        host = torch.empty(n, dtype=torch.uint8, pin_memory=pin)
        sec = timed(lambda host=host: host.to(device, non_blocking=pin), device, repeats)
        out.append({"kind": "h2d_copy", "bytes": n, "pinned": pin, "seconds": sec,
                    "bytes_per_s": n / sec if sec > 0 else None, "skipped": None,
                    "note": None if pin else "no device: a host-to-host copy, not a transfer"})
    return out


def environment(device: str) -> dict:
    env = {"torch": torch.__version__, "transformers": transformers.__version__,
           "python": platform.python_version(), "device": device, "cuda": torch.version.cuda,
           "gpu": None, "driver": None}
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        try:
            env["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20, check=False).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            env["driver"] = None
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default="llama-3.1-8b,deepseek-v3")
    ap.add_argument("--catalogue", type=Path, default=CATALOGUE)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="shrink every model (CPU test)")
    ap.add_argument("--mla-layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=300.0)
    args = ap.parse_args(argv)
    if args.out.exists():
        sys.stderr.write(f"gpu_probe: error: {args.out} exists; choose another --out\n")
        return 2
    start = time.perf_counter()
    deadline = start + args.budget_s
    plan = PLAN["tiny" if args.tiny else "full"]
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    records = []
    for name in [m for m in args.models.split(",") if m]:
        model, info = build_model(name, load_config(name, args.catalogue), tiny=args.tiny,
                                  mla_layers=args.mla_layers, device=args.device, dtype=dtype)
        info["dtype"] = str(dtype).replace("torch.", "")
        records += probe_model(model, info, plan, args.device, args.repeats, deadline)
        del model
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    records += probe_copy(plan, args.device, args.repeats, deadline)
    doc = {"schema_version": SCHEMA_VERSION, "kind": "gpu_probe", "measured": True,
           "environment": environment(args.device), "wall_s": time.perf_counter() - start,
           "records": records}
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, args.out)  # atomic: simkv's writer is not importable here
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
