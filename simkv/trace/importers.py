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
from array import array
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from simkv.errors import InputError
from simkv.hashing import blake2b_key, combine, content_unit_tokens, hash_tokens, key_of
from simkv.trace.format_registry import TraceFormat, register_format
from simkv.trace.jsonl import MAX_TIME, extend_hash_ids, int_field, json_lines, time_field
from simkv.trace.model import TAG_CODES, Trace
from simkv.trace.tokenizers import BuiltinTokenizer, HFTokenizer, Tokenizer, get_tokenizer
from simkv.validate import check_number, real

__all__ = ["BuiltinTokenizer", "HFTokenizer", "Tokenizer", "get_tokenizer", "AlibabaRows",
           "LogRows", "read_alibaba", "read_openai_log", "log_time_model"]

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


def check_block_tokens(block_tokens: int) -> int:
    if isinstance(block_tokens, bool) or not isinstance(block_tokens, int) or block_tokens <= 0:
        raise InputError(f"must be a positive integer, got {block_tokens!r}", where="--block-tokens")
    return block_tokens


# --------------------------------------------------------------------------- alibaba
class AlibabaRows:
    """Alibaba lines parsed into columns, a chunk at a time (:meth:`take` empties them); the
    session state (each chat's session, the session count) and the per-type counts carry over,
    so a file parsed in chunks gives the same columns as parsed whole."""

    def __init__(self, path: Path, block_tokens: int) -> None:
        self.path, self.block_tokens = path, block_tokens
        self.session_of: dict[int, int] = {}
        self.types: Counter = Counter()
        self.n_sessions = 0
        self.clear()

    def clear(self) -> None:
        """Drop the rows parsed so far (the numbering and counts stay)."""
        self.ts, self.inp, self.out, self.sess = array("d"), array("q"), array("q"), array("q")
        self.offsets, self.hashes = array("q", [0]), array("Q")

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, lineno: int, obj: dict) -> float:
        """Parse one line (checked) and return its timestamp."""
        path, block_tokens = self.path, self.block_tokens
        chat = int_field(obj, "chat_id", path, lineno, minimum=None)
        parent = int_field(obj, "parent_chat_id", path, lineno, default=-1, minimum=None)
        t = time_field(obj, "timestamp", path, lineno, "seconds")
        n_in = int_field(obj, "input_length", path, lineno)
        n_out = int_field(obj, "output_length", path, lineno)
        extend_hash_ids(self.hashes, obj, n_in, block_tokens, path, lineno)
        if chat in self.session_of:
            raise InputError(f"chat_id {chat} appears twice", source=path, where=f"line {lineno}")
        s = self.session_of.get(parent) if parent != -1 else None
        if s is None:
            s = self.n_sessions
            self.n_sessions += 1
        self.session_of[chat] = s
        self.types[str(obj.get("type", ""))] += 1
        self.ts.append(float(t))
        self.inp.append(n_in)
        self.out.append(n_out)
        self.sess.append(s)
        self.offsets.append(len(self.hashes))
        return float(t)

    def take(self, types: dict) -> Trace:
        """The rows parsed since the last take, as a Trace (not yet sorted or validated)."""
        trace = Trace.from_arrays(
            block_tokens=self.block_tokens, arrival_s=np.frombuffer(self.ts, dtype=np.float64),
            input_tokens=np.frombuffer(self.inp, dtype=np.int64),
            output_tokens=np.frombuffer(self.out, dtype=np.int64),
            block_offsets=np.frombuffer(self.offsets, dtype=np.int64),
            block_hashes=np.frombuffer(self.hashes, dtype=np.uint64),
            session_ids=np.frombuffer(self.sess, dtype=np.int64),
            meta={"source_format": "alibaba", "source_file": self.path.name, "types": types},
            validate=False,
        )
        self.clear()
        return trace


def read_alibaba(path: Path, block_tokens: int = ALIBABA_BLOCK_TOKENS) -> Trace:
    """Read an Alibaba "KVCache in the wild" JSONL trace (see the module docstring)."""
    path = Path(path)
    rows = AlibabaRows(path, check_block_tokens(block_tokens))
    for lineno, obj in json_lines(path):
        rows.add(lineno, obj)
    if not len(rows):
        raise InputError("trace has no requests", source=path)
    return _sorted(rows.take(dict(rows.types)))


def _sorted(trace: Trace) -> Trace:
    """The trace in stable timestamp order, validated."""
    order = np.argsort(trace.arrival_s, kind="stable")
    if np.any(order != np.arange(trace.n_requests)):
        trace = trace.select(order)
    trace.validate()
    return trace


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


def log_time_model(obj: dict, path: Path, lineno: int) -> tuple[float, str]:
    """A log line's timestamp (s since the epoch) and model name, checked."""
    if "timestamp" not in obj:
        raise InputError("missing field 'timestamp'", source=path, where=f"line {lineno}")
    t = _seconds(obj["timestamp"], path, lineno)
    model = obj.get("model")
    if not isinstance(model, str) or not model:
        raise InputError("field 'model' must be a non-empty string", source=path,
                         where=f"line {lineno}")
    return t, model


class LogRows:
    """Request-log lines tokenized into columns, a chunk at a time (:meth:`take` empties
    them); model, session and tenant numbering (in order of first appearance) carry over.
    ``models``: the numbering known up front (a stream's first pass), so every chunk names
    all the models."""

    def __init__(self, path: Path, block_tokens: int, tok: Tokenizer,
                 models: dict[str, int] | None = None) -> None:
        self.path, self.block_tokens, self.tok = path, block_tokens, tok
        self.models: dict[str, int] = dict(models or {})
        self.sessions: dict[str, int] = {}
        self.tenants: dict[str, int] = {}
        self.clear()

    def clear(self) -> None:
        """Drop the rows parsed so far (the numbering stays)."""
        self.ts, self.out, self.model_idx, self.sess, self.tenant = [], [], [], [], []
        self.tok_flat, self.tag_flat, self.tok_off = array("q"), array("b"), [0]

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, lineno: int, obj: dict) -> float:
        """Parse and tokenize one line (checked); return its timestamp."""
        t, model = log_time_model(obj, self.path, lineno)
        tokens, tags = _prompt_tokens(obj, self.tok, self.path, lineno)
        n_out = _output_tokens(obj, self.path, lineno)
        sid = obj.get("session_id", obj.get("conversation_id"))
        ten = obj.get("tenant")
        self.ts.append(t)
        self.out.append(n_out)
        self.model_idx.append(self.models.setdefault(model, len(self.models)))
        self.sess.append(-1 if sid is None else
                         self.sessions.setdefault(str(sid), len(self.sessions)))
        self.tenant.append(-1 if ten is None else
                           self.tenants.setdefault(str(ten), len(self.tenants)))
        self.tok_flat.extend(tokens)
        self.tag_flat.extend(tags)
        self.tok_off.append(len(self.tok_flat))
        return t

    def take(self, t_min: float) -> Trace:
        """The rows since the last take, hashed, arrivals relative to ``t_min`` (the earliest
        line of the file); not yet sorted or validated."""
        block_tokens = self.block_tokens
        token_offsets = np.asarray(self.tok_off, dtype=np.int64)
        tokens_arr = np.frombuffer(self.tok_flat, dtype=np.int64)
        tags_arr = np.frombuffer(self.tag_flat, dtype=np.int8)
        n_in = np.diff(token_offsets)
        offsets = np.zeros(len(self.ts) + 1, dtype=np.int64)
        np.cumsum(-(-n_in // block_tokens), out=offsets[1:])
        names = tuple(self.models)
        model_keys = np.array([key_of("model", m) for m in names], dtype=np.uint64)
        salts = combine(model_keys[np.asarray(self.model_idx, dtype=np.int64)], np.uint64(0))
        hashes = np.empty(offsets[-1], dtype=np.uint64)
        content = np.empty(offsets[-1], dtype=np.uint64)
        unit = content_unit_tokens(block_tokens)
        hash_tokens(token_offsets, tokens_arr, salts, offsets, block_tokens, unit, hashes, content)
        block_start = token_offsets[:-1].repeat(np.diff(offsets)) + (
            np.arange(offsets[-1]) - offsets[:-1].repeat(np.diff(offsets))) * block_tokens
        arrival = np.asarray(self.ts, dtype=np.float64)
        trace = Trace.from_arrays(
            block_tokens=block_tokens, arrival_s=arrival - t_min, input_tokens=n_in,
            output_tokens=self.out, block_offsets=offsets, block_hashes=hashes,
            block_tags=tags_arr[block_start], content_hashes=content, session_ids=self.sess,
            tenant_ids=self.tenant, model_index=self.model_idx, models=names,
            meta={"source_format": "openai-log", "source_file": self.path.name,
                  "tokenizer": self.tok.name, "content_hash_unit_tokens": unit,
                  "start_epoch_s": t_min},
            validate=False,
        )
        self.clear()
        return trace


def read_openai_log(path: Path, block_tokens: int = LOG_BLOCK_TOKENS,
                    tokenizer: str | Path | Tokenizer | None = None) -> Trace:
    """Read an OpenAI-style request log (see the module docstring)."""
    path = Path(path)
    block_tokens = check_block_tokens(block_tokens)
    rows = LogRows(path, block_tokens, get_tokenizer(tokenizer))
    for lineno, obj in json_lines(path):
        rows.add(lineno, obj)
    if not len(rows):
        raise InputError("log has no requests", source=path)
    return _sorted(rows.take(float(np.asarray(rows.ts, dtype=np.float64).min())))


register_format(TraceFormat("alibaba", read_alibaba, None, (),
                            "Alibaba 'KVCache in the wild' JSONL (16-token hash_ids, chat_id chains)"))
register_format(TraceFormat("openai-log", read_openai_log, None, (),
                            "OpenAI-style request log JSONL (messages or prompt), tokenized and hashed"))
