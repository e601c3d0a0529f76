"""`trace import` streamed: an importer's lines parsed and written a chunk at a time.

Both importers write whole-file facts into the trace's metadata, which a writer needs with the
first chunk (Alibaba: the request count per ``type``; request logs: the earliest timestamp,
to which arrivals are relative, and the models in order of first appearance), and both sort
the lines by time (stable).  So an import makes two passes over the input: :func:`scan_import`
reads every line once for those facts and to see whether the lines are already in time order;
:func:`import_chunks` then parses them again, a chunk at a time, carrying the session (and
model, tenant) numbering, so its chunks joined equal the whole-file reader's trace.  Memory is
one chunk plus the numbering (Alibaba: each chat id's session, as the whole reader keeps).
Input not in time order is sorted on disk first (:mod:`simkv.trace.import_sort`, an external
merge sort of the parsed rows) and streamed from there.

The scan checks every field of an Alibaba line (so the first bad line is reported, as the
whole reader does); of a log line only the timestamp and model (tokenizing is the second
pass's work), so in a log with several bad lines a later bad timestamp can be reported before
an earlier bad prompt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from simkv.errors import InputError
from simkv.trace.importers import (
    ALIBABA_BLOCK_TOKENS,
    LOG_BLOCK_TOKENS,
    AlibabaRows,
    LogRows,
    Tokenizer,
    check_block_tokens,
    get_tokenizer,
    log_time_model,
)
from simkv.trace.jsonl import json_lines
from simkv.trace.model import Trace
from simkv.validate import input_file

#: the formats `trace import` takes
IMPORT_FORMATS = ("alibaba", "openai-log")


@dataclass(frozen=True)
class ImportScan:
    """What the first pass learnt: the facts the first chunk's metadata needs."""

    path: Path
    format: str
    block_tokens: int
    in_order: bool  # timestamps never decrease, so the stable sort is the identity
    types: dict = field(default_factory=dict)  # alibaba
    models: dict = field(default_factory=dict)  # openai-log: name -> index, first appearance
    t_min: float = 0.0  # openai-log: the earliest timestamp
    tokenizer: Tokenizer | None = None
    n_requests: int = 0
    n_blocks: int | None = None  # alibaba (the hash ids); logs: unknown until tokenized


def scan_import(path: Path, format: str, block_tokens: int | None = None,
                tokenizer: str | Path | Tokenizer | None = None) -> ImportScan:
    """The first pass over an importer's input (see the module docstring)."""
    path = input_file(path, "trace file")
    if format == "alibaba":
        bt = check_block_tokens(ALIBABA_BLOCK_TOKENS if block_tokens is None else block_tokens)
        rows = AlibabaRows(path, bt)
        in_order, last, n, blocks = True, float("-inf"), 0, 0
        for lineno, obj in json_lines(path):
            t = rows.add(lineno, obj)
            in_order &= t >= last
            last, n = t, n + 1
            if len(rows) >= 4096:
                blocks += len(rows.hashes)
                rows.clear()  # only the checks, numbering and counts are kept
        if not n:
            raise InputError("trace has no requests", source=path)
        return ImportScan(path, format, bt, in_order, types=dict(rows.types), n_requests=n,
                          n_blocks=blocks + len(rows.hashes))
    if format != "openai-log":
        raise InputError(f"import takes {' or '.join(IMPORT_FORMATS)}, not {format!r}",
                         where="--format")
    bt = check_block_tokens(LOG_BLOCK_TOKENS if block_tokens is None else block_tokens)
    tok = get_tokenizer(tokenizer)
    models: dict[str, int] = {}
    in_order, last, t_min, n = True, float("-inf"), float("inf"), 0
    for lineno, obj in json_lines(path):
        t, model = log_time_model(obj, path, lineno)
        models.setdefault(model, len(models))
        in_order &= t >= last
        last, t_min, n = t, min(t_min, t), n + 1
    if not models:
        raise InputError("log has no requests", source=path)
    return ImportScan(path, format, bt, in_order, models=models, t_min=t_min, tokenizer=tok,
                      n_requests=n)


def import_chunks(scan: ImportScan, chunk_requests: int) -> Iterator[Trace]:
    """The second pass: consecutive chunks of ``chunk_requests`` requests of an input in time
    order (``scan.in_order``), equal, joined, to the whole reader's trace."""
    if not scan.in_order:
        raise ValueError("import_chunks needs input in time order; sort it with "
                         "simkv.trace.import_sort.SortedImport")
    if scan.format == "alibaba":
        rows: AlibabaRows | LogRows = AlibabaRows(scan.path, scan.block_tokens)
    else:
        assert scan.tokenizer is not None
        rows = LogRows(scan.path, scan.block_tokens, scan.tokenizer, scan.models)

    def take() -> Trace:
        chunk = rows.take(scan.types) if scan.format == "alibaba" else rows.take(scan.t_min)
        chunk.validate()
        return chunk

    for lineno, obj in json_lines(scan.path):
        rows.add(lineno, obj)
        if len(rows) >= chunk_requests:
            yield take()
    if len(rows):
        yield take()
