"""A model directory vLLM can serve without downloads: config.json plus a word-level tokenizer.

vLLM runs the architecture with random weights (``--load-format dummy``), so only the config
matters; it still loads a tokenizer, so we write a minimal Hugging Face ``tokenizer.json``
(a WordLevel model whose tokens are ``t<id>``) by hand, with no library needed.  Ids 0-2 are the
special tokens ``<unk> <s> </s>``; the harness sends prompts as token-id lists and never relies on
the tokenizer's text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simkv.errors import InputError
from simkv.models.geometry import _catalogue_dir, catalogue_names, load_config_file

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")


def resolve_config(name_or_dir: str) -> tuple[dict[str, Any], Path | None]:
    """The config dict of a catalogue model or of a directory / config.json path.

    Returns (config, directory) where directory is the user's model directory when it already
    holds a tokenizer (served as is), else None.
    """
    if name_or_dir in catalogue_names():
        ref = _catalogue_dir() / f"{name_or_dir}.json"
        return json.loads(ref.read_text()), None
    path = Path(name_or_dir)
    cfg_path = path / "config.json" if path.is_dir() else path
    if not cfg_path.exists():
        raise InputError(f"not a catalogue model (catalogue: {', '.join(catalogue_names())}) "
                         "nor a directory holding config.json", source=name_or_dir,
                         where="--model-config")
    cfg = load_config_file(cfg_path)
    has_tok = (cfg_path.parent / "tokenizer.json").exists() or \
        (cfg_path.parent / "tokenizer.model").exists()
    return cfg, (cfg_path.parent if has_tok else None)


def tokenizer_json(vocab_size: int) -> dict[str, Any]:
    """A WordLevel tokenizer with one token per id (``t<id>``; ids 0-2 special)."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    vocab.update({f"t{i}": i for i in range(len(SPECIAL_TOKENS), vocab_size)})
    added = [{"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, tok in enumerate(SPECIAL_TOKENS)]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": None, "decoder": None,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}}


def write_model_dir(cfg: dict[str, Any], out: Path) -> Path:
    """Write config.json + tokenizer files into ``out`` (created); returns ``out``."""
    vocab = cfg.get("vocab_size")
    if not isinstance(vocab, int) or vocab <= len(SPECIAL_TOKENS):
        raise InputError("model config needs an integer vocab_size", where="vocab_size")
    out.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in cfg.items() if not k.startswith("_")}
    clean.setdefault("architectures", ["LlamaForCausalLM"])
    clean.setdefault("bos_token_id", 1)
    clean.setdefault("eos_token_id", 2)
    (out / "config.json").write_text(json.dumps(clean, indent=1))
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab)))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>", "bos_token": "<s>",
        "eos_token": "</s>", "model_max_length": int(clean.get("max_position_embeddings", 8192)),
        "clean_up_tokenization_spaces": False}))
    return out
