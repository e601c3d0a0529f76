"""``simkv models``: the KV geometry catalogue."""

from __future__ import annotations

import typer

from simkv.cli.common import print_json, print_table
from simkv.models.geometry import catalogue_names, get_model, kv_bytes_per_gib_tokens
from simkv.units import format_bytes

models_app = typer.Typer(help="KV geometry catalogue (bytes of KV cache per token).",
                         no_args_is_help=True)


def _describe(name: str, kv_dtype: str | None = None, tp: int | None = None) -> dict:
    spec = get_model(name).with_options(kv_dtype=kv_dtype, tensor_parallel=tp)
    return {
        "model": spec.name,
        "attention": "MLA" if spec.is_mla else ("hybrid sliding-window" if spec.window_layers else "GQA/MHA"),
        "layers": spec.num_layers,
        "kv_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "kv_element_bytes": spec.kv_element_bytes,
        "tensor_parallel": spec.tensor_parallel,
        "kv_bytes_per_token": spec.kv_bytes_per_token,
        "tokens_per_gib": kv_bytes_per_gib_tokens(spec),
        "kv_bytes_32k_tokens": spec.kv_bytes(32_000),
        "sliding_window": spec.sliding_window,
        "window_layers": spec.window_layers,
        "source": spec.source,
    }


@models_app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every catalogue model with its KV bytes per token."""
    rows = [_describe(n) for n in catalogue_names()]
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    from simkv.cli.common import console

    table = Table(title="KV geometry catalogue (per GPU, TP=1, config dtype)")
    for col in ("model", "attention", "KV/token", "tokens/GiB", "32k-token prefix"):
        table.add_column(col, justify="left" if col in ("model", "attention") else "right")
    for r in rows:
        table.add_row(r["model"], r["attention"], format_bytes(r["kv_bytes_per_token"]),
                      f"{r['tokens_per_gib']:,.0f}", format_bytes(r["kv_bytes_32k_tokens"]))
    console.print(table)


@models_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Catalogue name or path to a config.json."),
    kv_dtype: str | None = typer.Option(None, "--kv-dtype", help="KV cache dtype, e.g. fp8."),
    tp: int | None = typer.Option(None, "--tp", help="Tensor-parallel degree (per-GPU bytes)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """KV bytes per token and per GiB of tokens for one model."""
    info = _describe(name, kv_dtype, tp)
    if json_out:
        print_json(info)
    else:
        print_table(f"model {info['model']}", list(info.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
