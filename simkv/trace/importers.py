"""Importers registered as trace formats: ``alibaba`` and ``openai-log`` (read only).

**alibaba** -- the "KVCache in the wild" (ATC'25) traces: JSONL, one request per line with
``chat_id``, ``parent_chat_id`` (-1 for a first turn), ``timestamp`` (s), ``input_length``,
``output_length``, ``type``, ``turn`` and ``hash_ids`` (prefix-chained ids of 16-token blocks,
``len == ceil(input_length / 16)``).  Sessions follow ``parent_chat_id`` chains: a request
joins its parent's session; a root (or a request whose parent is not in the file) starts a
new one, numbered in order of appearance.  Lines are sorted by timestamp (stable).  Content
hashes, tags, models and tenants are unknown.  Counts per ``type`` go to
``trace.meta["types"]``.

**openai-log** -- request logs, JSONL: ``timestamp`` (s since the epoch, or an ISO-8601
string), ``model``, and ``messages`` (chat; contents a string or a list of parts) or
``prompt`` (a string or a list of token ids); optional ``tools`` (definitions, rendered before
the messages as chat templates do), ``usage.completion_tokens`` / ``output_tokens`` /
``max_tokens`` for the output length, ``session_id`` (or ``conversation_id``) and ``tenant``.
Arrival times are relative to the earliest line.  Prompts become tokens through a pluggable
tokenizer (:class:`BuiltinTokenizer`, a deterministic approximation, by default; a local
``tokenizer.json`` through the optional ``tokenizers`` package), each message wrapped in role
markers, then chained and content block hashes (``simkv.hashing``; salted by model).
Block tags: system messages -> system, tools -> tools, the last user message -> user, earlier
turns -> history.
"""

from __future__ import annotations

import json
import re
from array import array
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from simkv.errors import InputError
from simkv.hashing import blake2b_key, combine, content_unit_tokens, hash_tokens, key_of
from simkv.trace.format_registry import TraceFormat, register_format
from simkv.trace.jsonl import MAX_TIME, extend_hash_ids, int_field, json_lines, time_field
from simkv.trace.model import TAG_CODES, Trace
from simkv.validate import check_number, real

ALIBABA_BLOCK_TOKENS = 16
LOG_BLOCK_TOKENS = 16
#: Token ids of role markers (above any vocabulary id), e.g. ``<|user|>``.
_SPECIAL_BASE = 1 << 40


def _seconds(v: Any, path: Path, lineno: int) -> float:
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            raise InputError(f"field 'timestamp' is not a number or ISO-8601 time: {v!r:.60}",
                             source=path, where=f"line {lineno}") from None
        if v < 0:
            raise InputError("field 'timestamp' is before 1970 (times are seconds since the "
                             "Unix epoch)", source=path, where=f"line {lineno}")
    check_number(v, real(0.0, MAX_TIME), "field 'timestamp'",
                 source=f"{path}: line {lineno}")
    return float(v)


def _check_block_tokens(block_tokens: int) -> int:
    if isinstance(block_tokens, bool) or not isinstance(block_tokens, int) or block_tokens <= 0:
        raise InputError(f"must be a positive integer, got {block_tokens!r}", where="--block-tokens")
    return block_tokens


# --------------------------------------------------------------------------- alibaba
def read_alibaba(path: Path, block_tokens: int = ALIBABA_BLOCK_TOKENS) -> Trace:
    """Read an Alibaba "KVCache in the wild" JSONL trace (see the module docstring)."""
    path = Path(path)
    block_tokens = _check_block_tokens(block_tokens)
    ts, inp, out, sess = array("d"), array("q"), array("q"), array("q")
    offsets = array("q", [0])
    hashes = array("Q")
    session_of: dict[int, int] = {}
    types: Counter = Counter()
    n_sessions = 0
    for lineno, obj in json_lines(path):
        chat = int_field(obj, "chat_id", path, lineno, minimum=None)
        parent = int_field(obj, "parent_chat_id", path, lineno, default=-1, minimum=None)
        t = time_field(obj, "timestamp", path, lineno, "seconds")
        n_in = int_field(obj, "input_length", path, lineno)
        n_out = int_field(obj, "output_length", path, lineno)
        extend_hash_ids(hashes, obj, n_in, block_tokens, path, lineno)
        if chat in session_of:
            raise InputError(f"chat_id {chat} appears twice", source=path, where=f"line {lineno}")
        s = session_of.get(parent) if parent != -1 else None
        if s is None:
            s = n_sessions
            n_sessions += 1
        session_of[chat] = s
        types[str(obj.get("type", ""))] += 1
        ts.append(float(t))
        inp.append(n_in)
        out.append(n_out)
        sess.append(session_of[chat])
        offsets.append(len(hashes))
    if not ts:
        raise InputError("trace has no requests", source=path)
    arrival = np.frombuffer(ts, dtype=np.float64)
    trace = Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=arrival,
        input_tokens=np.frombuffer(inp, dtype=np.int64), output_tokens=np.frombuffer(out, dtype=np.int64),
        block_offsets=np.frombuffer(offsets, dtype=np.int64),
        block_hashes=np.frombuffer(hashes, dtype=np.uint64),
        session_ids=np.frombuffer(sess, dtype=np.int64),
        meta={"source_format": "alibaba", "source_file": path.name, "types": dict(types)},
        validate=False,
    )
    return _sorted(trace)


def _sorted(trace: Trace) -> Trace:
    """The trace in stable timestamp order, validated."""
    order = np.argsort(trace.arrival_s, kind="stable")
    if np.any(order != np.arange(trace.n_requests)):
        trace = trace.select(order)
    trace.validate()
    return trace


# --------------------------------------------------------------------------- tokenizers
class Tokenizer(Protocol):
    """Turns text into token ids (deterministically)."""

    name: str

    def encode(self, text: str) -> list[int]: ...


class BuiltinTokenizer:
    """A deterministic approximation of a BPE tokenizer (no vocabulary file needed).

    Text is split into words, single punctuation marks and whitespace runs; words longer than
    4 characters are cut into 4-character pieces (about 4 characters per token for English, as
    BPE tokenizers average); each piece's id is a 32-bit blake2b of its text.  Equal text
    gives equal ids, so shared prefixes are found exactly; counts are approximate.
    """

    name = "builtin"
    _PIECES = re.compile(r"\w+|[^\w\s]|\s+")

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def _id(self, piece: str) -> int:
        v = self._cache.get(piece)
        if v is None:
            v = blake2b_key(piece.encode(), 4)
            if len(self._cache) < 1_000_000:
                self._cache[piece] = v
        return v

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for m in self._PIECES.finditer(text):
            piece = m.group(0)
            if len(piece) <= 4:
                out.append(self._id(piece))
            else:
                out.extend(self._id(piece[i:i + 4]) for i in range(0, len(piece), 4))
        return out


class HFTokenizer:
    """A local ``tokenizer.json`` through the optional ``tokenizers`` package."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        try:
            from tokenizers import Tokenizer as _HF
        except ImportError:
            raise InputError("the 'tokenizers' package is not installed (pip install tokenizers), "
                             "so a tokenizer.json cannot be used", where="--tokenizer") from None
        if not path.is_file():
            raise InputError("tokenizer file not found", source=path, where="--tokenizer")
        try:
            self._tok = _HF.from_file(str(path))
        except Exception as exc:  # the Rust library raises its own exception types
            raise InputError(f"not a tokenizer.json ({exc})", source=path,
                             where="--tokenizer") from None
        self.name = path.name

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)


def get_tokenizer(spec: str | Path | Tokenizer | None) -> Tokenizer:
    """None or "builtin" -> the built-in approximation; a path -> a tokenizer.json."""
    if spec is None or (isinstance(spec, str) and spec == "builtin"):
        return BuiltinTokenizer()
    if isinstance(spec, str | Path):
        return HFTokenizer(spec)
    return spec


# --------------------------------------------------------------------------- openai-log
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _special(name: str) -> int:
    return _SPECIAL_BASE + blake2b_key(name.encode(), 3)


def _content_text(content: Any, path: Path, lineno: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                else:  # images, audio, files: their reference stands for their tokens
                    parts.append(json.dumps({k: v for k, v in part.items() if k != "type"},
                                            sort_keys=True))
            else:
                raise InputError("message content parts must be strings or objects",
                                 source=path, where=f"line {lineno}")
        return "\n".join(parts)
    raise InputError("message 'content' must be a string or a list of parts", source=path,
                     where=f"line {lineno}")


def _prompt_tokens(obj: dict, tok: Tokenizer, path: Path, lineno: int
                   ) -> tuple[list[int], list[int]]:
    """Token ids of a logged request and the tag code of each token."""
    tokens: list[int] = []
    tags: list[int] = []

    def add(ids: list[int], tag: str) -> None:
        tokens.extend(ids)
        tags.extend([TAG_CODES[tag]] * len(ids))

    if obj.get("tools") is not None:
        add([_special("tools")] + tok.encode(json.dumps(obj["tools"], sort_keys=True)), "tools")
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise InputError("field 'messages' must be a non-empty list", source=path,
                             where=f"line {lineno}")
        last_user = max((i for i, m in enumerate(msgs) if isinstance(m, dict)
                         and m.get("role") == "user"), default=len(msgs) - 1)
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise InputError(f"messages[{i}] must be an object with a 'role'", source=path,
                                 where=f"line {lineno}")
            role = m["role"]
            if role in ("system", "developer"):
                tag = "system"
            else:
                tag = "user" if i >= last_user else "history"
            text = _content_text(m.get("content"), path, lineno)
            if m.get("tool_calls") is not None:
                text += json.dumps(m["tool_calls"], sort_keys=True)
            add([_special(f"<|{role}|>")] + tok.encode(text) + [_special("<|end|>")], tag)
    elif "prompt" in obj:
        p = obj["prompt"]
        if isinstance(p, str):
            add(tok.encode(p), "user")
        elif isinstance(p, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                         and 0 <= x < _SPECIAL_BASE for x in p):
            add(list(p), "user")
        else:
            raise InputError("field 'prompt' must be a string or a list of token ids",
                             source=path, where=f"line {lineno}")
    else:
        raise InputError("a line needs 'messages' or 'prompt'", source=path, where=f"line {lineno}")
    if not tokens:
        raise InputError("the prompt is empty", source=path, where=f"line {lineno}")
    return tokens, tags


def _output_tokens(obj: dict, path: Path, lineno: int) -> int:
    usage = obj.get("usage")
    if isinstance(usage, dict) and "completion_tokens" in usage:
        return int_field(usage, "completion_tokens", path, lineno)
    for key in ("output_tokens", "max_tokens"):
        if key in obj:
            return int_field(obj, key, path, lineno)
    return 0


def read_openai_log(path: Path, block_tokens: int = LOG_BLOCK_TOKENS,
                    tokenizer: str | Path | Tokenizer | None = None) -> Trace:
    """Read an OpenAI-style request log (see the module docstring)."""
    path = Path(path)
    block_tokens = _check_block_tokens(block_tokens)
    tok = get_tokenizer(tokenizer)
    ts, out, model_idx, sess, tenant = [], [], [], [], []
    tok_flat, tag_flat = array("q"), array("b")
    tok_off = [0]
    models: dict[str, int] = {}
    sessions: dict[str, int] = {}
    tenants: dict[str, int] = {}
    for lineno, obj in json_lines(path):
        if "timestamp" not in obj:
            raise InputError("missing field 'timestamp'", source=path, where=f"line {lineno}")
        t = _seconds(obj["timestamp"], path, lineno)
        model = obj.get("model")
        if not isinstance(model, str) or not model:
            raise InputError("field 'model' must be a non-empty string", source=path,
                             where=f"line {lineno}")
        tokens, tags = _prompt_tokens(obj, tok, path, lineno)
        n_out = _output_tokens(obj, path, lineno)
        sid = obj.get("session_id", obj.get("conversation_id"))
        ten = obj.get("tenant")
        ts.append(t)
        out.append(n_out)
        model_idx.append(models.setdefault(model, len(models)))
        sess.append(-1 if sid is None else sessions.setdefault(str(sid), len(sessions)))
        tenant.append(-1 if ten is None else tenants.setdefault(str(ten), len(tenants)))
        tok_flat.extend(tokens)
        tag_flat.extend(tags)
        tok_off.append(len(tok_flat))
    if not ts:
        raise InputError("log has no requests", source=path)
    token_offsets = np.asarray(tok_off, dtype=np.int64)
    tokens_arr = np.frombuffer(tok_flat, dtype=np.int64)
    tags_arr = np.frombuffer(tag_flat, dtype=np.int8)
    n_in = np.diff(token_offsets)
    offsets = np.zeros(len(ts) + 1, dtype=np.int64)
    np.cumsum(-(-n_in // block_tokens), out=offsets[1:])
    names = tuple(models)
    model_keys = np.array([key_of("model", m) for m in names], dtype=np.uint64)
    salts = combine(model_keys[np.asarray(model_idx, dtype=np.int64)], np.uint64(0))
    hashes = np.empty(offsets[-1], dtype=np.uint64)
    content = np.empty(offsets[-1], dtype=np.uint64)
    unit = content_unit_tokens(block_tokens)
    hash_tokens(token_offsets, tokens_arr, salts, offsets, block_tokens, unit, hashes, content)
    block_start = token_offsets[:-1].repeat(np.diff(offsets)) + (
        np.arange(offsets[-1]) - offsets[:-1].repeat(np.diff(offsets))) * block_tokens
    arrival = np.asarray(ts, dtype=np.float64)
    trace = Trace.from_arrays(
        block_tokens=block_tokens, arrival_s=arrival - arrival.min(), input_tokens=n_in,
        output_tokens=out, block_offsets=offsets, block_hashes=hashes,
        block_tags=tags_arr[block_start], content_hashes=content, session_ids=sess,
        tenant_ids=tenant, model_index=model_idx, models=names,
        meta={"source_format": "openai-log", "source_file": path.name, "tokenizer": tok.name,
              "content_hash_unit_tokens": unit, "start_epoch_s": float(arrival.min())},
        validate=False,
    )
    return _sorted(trace)


register_format(TraceFormat("alibaba", read_alibaba, None, (),
                            "Alibaba 'KVCache in the wild' JSONL (16-token hash_ids, chat_id chains)"))
register_format(TraceFormat("openai-log", read_openai_log, None, (),
                            "OpenAI-style request log JSONL (messages or prompt), tokenized and hashed"))
