"""`trace import` of input out of time order, streamed: an external merge sort of parsed rows.

Both importers number sessions (Alibaba: ``parent_chat_id`` chains; logs: models, sessions,
tenants) in the order the lines appear in the file, then sort the requests by time (stable).
So the lines are parsed in file order, exactly as the whole-file reader parses them, a run of
at most ``run_requests`` requests at a time (the numbering carried across runs, as
:func:`simkv.trace.import_stream.import_chunks` carries it across chunks); each run is turned
into its trace columns (Alibaba: the hash ids; logs: tokenized and hashed, arrivals relative
to the scan's earliest timestamp), sorted by (arrival, line number) and spilled to a temporary
file.  A k-way merge of the runs by the same key then gives the stable sort's order: among
equal arrivals the earlier line comes first, as ``numpy.argsort(kind="stable")`` puts it.
The key is the arrival as the trace holds it (for logs after subtracting the earliest
timestamp), the very value the whole reader sorts.

Memory: one run while spilling; while merging, a buffer per run (``merge_requests`` requests
shared between the runs) plus one output chunk.  More runs than ``MERGE_FAN_IN`` are merged in
groups into longer runs first (each pass reads and writes the spilled bytes once).

Disk: a request takes 54 bytes, a block 8 (Alibaba) or 17 (logs: hash, content hash, tag).
Free space in the temporary directory is checked before the first byte is written (Alibaba:
the scan counted the blocks; logs: an estimate, at most one token per byte of input) and again
before each run is written; the directory (``tempfile``; ``TMPDIR`` picks the disk) is
removed on success, on error and on Ctrl-C.

Errors name the original line: the lines are parsed in file order by the importers' own row
parsers, so the first bad line reported is the one the whole-file reader would report.
"""

from __future__ import annotations

import shutil
import tempfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from simkv.errors import InputError
from simkv.trace.import_stream import ImportScan
from simkv.trace.importers import AlibabaRows, LogRows
from simkv.trace.jsonl import json_lines
from simkv.trace.model import Trace

#: requests parsed, sorted and spilled per run (memory: one run)
DEFAULT_RUN_REQUESTS = 1 << 16
#: requests held in the merge's buffers, shared between the runs
DEFAULT_MERGE_REQUESTS = 1 << 14
#: at most this many runs are merged at once (one open file each); more are merged in groups
MERGE_FAN_IN = 64
#: free disk kept beyond the estimate, for the output and everyone else
_DISK_MARGIN_BYTES = 64 << 20

#: a spilled request: its sort key (arrival, line) and its trace columns
REQUEST_DTYPE = np.dtype([("arrival_s", "<f8"), ("line", "<i8"), ("session", "<i8"),
                          ("tenant", "<i4"), ("model", "<i2"), ("input_tokens", "<i8"),
                          ("output_tokens", "<i8"), ("n_blocks", "<i8")])
#: a spilled block: Alibaba lines have hashes only; logs have content hashes and tags too
BLOCK_DTYPES = {
    "alibaba": np.dtype([("hash", "<u8")]),
    "openai-log": np.dtype([("hash", "<u8"), ("content", "<u8"), ("tag", "i1")]),
}


@dataclass(frozen=True)
class Run:
    """One sorted run on disk: request records in ``req``, their blocks in ``blk``."""

    req: Path
    blk: Path
    n_requests: int
    n_blocks: int


@dataclass(frozen=True)
class Batch:
    """Consecutive spilled requests (sorted by arrival, line) and their blocks."""

    req: np.ndarray  # REQUEST_DTYPE
    blk: np.ndarray  # the format's block dtype

    def __len__(self) -> int:
        return len(self.req)

    def head(self, k: int) -> tuple[Batch, Batch]:
        """The first ``k`` requests and the rest."""
        nb = int(self.req["n_blocks"][:k].sum())
        return (Batch(self.req[:k], self.blk[:nb]), Batch(self.req[k:], self.blk[nb:]))


def _select(req: np.ndarray, blk: np.ndarray, order: np.ndarray) -> Batch:
    """The requests in ``order`` with their blocks (as :meth:`Trace.select` gathers them)."""
    offsets = np.zeros(len(req) + 1, dtype=np.int64)
    np.cumsum(req["n_blocks"], out=offsets[1:])
    starts, lengths = offsets[:-1][order], req["n_blocks"][order]
    new = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new[1:])
    take = np.repeat(starts - new[:-1], lengths) + np.arange(new[-1], dtype=np.int64)
    return Batch(req[order], blk[take])


def _sorted(batch: Batch) -> Batch:
    """``batch`` in (arrival, line) order: the stable sort by arrival of lines in file order."""
    order = np.lexsort((batch.req["line"], batch.req["arrival_s"]))
    return _select(batch.req, batch.blk, order)


def _concat(parts: list[Batch], fmt: str) -> Batch:
    if not parts:
        return Batch(np.empty(0, REQUEST_DTYPE), np.empty(0, BLOCK_DTYPES[fmt]))
    if len(parts) == 1:
        return parts[0]
    return Batch(np.concatenate([p.req for p in parts]), np.concatenate([p.blk for p in parts]))


def _records(trace: Trace, lines: np.ndarray, fmt: str) -> Batch:
    """A run's trace (in file order) as spill records."""
    req = np.empty(trace.n_requests, REQUEST_DTYPE)
    req["arrival_s"], req["line"] = trace.arrival_s, lines
    req["session"], req["tenant"], req["model"] = (trace.session_ids, trace.tenant_ids,
                                                   trace.model_index)
    req["input_tokens"], req["output_tokens"] = trace.input_tokens, trace.output_tokens
    req["n_blocks"] = np.diff(trace.block_offsets)
    blk = np.empty(trace.n_block_accesses, BLOCK_DTYPES[fmt])
    blk["hash"] = trace.block_hashes
    if fmt == "openai-log":
        blk["content"], blk["tag"] = trace.content_hashes, trace.block_tags
    return Batch(req, blk)


class _RunReader:
    """Reads a run's requests and blocks front to back, ``n`` requests at a time."""

    def __init__(self, run: Run, fmt: str) -> None:
        self.run, self.blk_dtype = run, BLOCK_DTYPES[fmt]
        self.left = run.n_requests
        self._req: BinaryIO = run.req.open("rb")
        self._blk: BinaryIO = run.blk.open("rb")

    def read(self, n: int) -> Batch:
        n = min(n, self.left)
        req = np.frombuffer(self._req.read(n * REQUEST_DTYPE.itemsize), REQUEST_DTYPE)
        nb = int(req["n_blocks"].sum())
        blk = np.frombuffer(self._blk.read(nb * self.blk_dtype.itemsize), self.blk_dtype)
        if len(req) != n or len(blk) != nb:
            raise OSError(f"temporary sort file {self.run.req} was cut short")
        self.left -= n
        return Batch(req, blk)

    def close(self) -> None:
        self._req.close()
        self._blk.close()


def merge_runs(runs: list[Run], fmt: str, merge_requests: int) -> Iterator[Batch]:
    """The runs' requests in (arrival, line) order, in batches.

    Each run keeps a buffer; everything at or below the smallest last key among the buffers
    of runs that have more on disk is final (no unread request can sort before it), so it is
    sorted and yielded, and the emptied buffers are refilled.  The run that set that key has
    its whole buffer taken, so every round makes progress."""
    per_run = max(1, merge_requests // max(1, len(runs)))
    readers = [_RunReader(r, fmt) for r in runs]
    try:
        bufs = [rd.read(per_run) for rd in readers]
        while True:
            live = [i for i, b in enumerate(bufs) if len(b)]
            if not live:
                return
            bounds = [(float(bufs[i].req["arrival_s"][-1]), int(bufs[i].req["line"][-1]))
                      for i in live if readers[i].left]
            taken: list[Batch] = []
            for i in live:
                b = bufs[i]
                if bounds:
                    t, line = min(bounds)
                    a, ln = b.req["arrival_s"], b.req["line"]
                    k = int(np.count_nonzero((a < t) | ((a == t) & (ln <= line))))
                else:
                    k = len(b)
                if k:
                    head, bufs[i] = b.head(k)
                    taken.append(head)
                if not len(bufs[i]) and readers[i].left:
                    bufs[i] = readers[i].read(per_run)
            yield _sorted(_concat(taken, fmt))
    finally:
        for rd in readers:
            rd.close()


def _rechunk(batches: Iterator[Batch], n: int) -> Iterator[list[Batch]]:
    """The batches' requests regrouped into groups of exactly ``n`` requests (the last: the
    rest); a group is a list of batches, joined column by column by its reader."""
    parts: list[Batch] = []
    held = 0
    for b in batches:
        while len(b):
            k = min(n - held, len(b))
            head, b = b.head(k)
            parts.append(head)
            held += k
            if held == n:
                yield parts
                parts, held = [], 0
    if held:
        yield parts


class SortedImport:
    """Context manager: the runs of an out-of-order input spilled to a temporary directory
    (removed on exit, whatever the exit), and :meth:`chunks` to read them back merged."""

    def __init__(self, scan: ImportScan, run_requests: int = DEFAULT_RUN_REQUESTS,
                 merge_requests: int | None = None, fan_in: int | None = None,
                 tmp_dir: str | Path | None = None) -> None:
        self.scan, self.run_requests = scan, run_requests
        self.merge_requests = merge_requests or DEFAULT_MERGE_REQUESTS  # read now: tests set it
        self.fan_in = max(2, fan_in or MERGE_FAN_IN)
        self.tmp_dir = tmp_dir
        self.blk_bytes = BLOCK_DTYPES[scan.format].itemsize
        self._dir: tempfile.TemporaryDirectory | None = None
        self._runs: list[Run] = []
        self._models: tuple[str, ...] = ()  # a run's models and meta, for the chunks
        self._meta: dict | None = None
        self._n = 0

    # ------------------------------------------------------------------ context
    def __enter__(self) -> SortedImport:
        self._dir = tempfile.TemporaryDirectory(prefix="simkv-import-sort-", dir=self.tmp_dir)
        try:
            self._check_disk(self._estimate_bytes(), "the sort's temporary files")
            self._spill()
        except BaseException:
            self._dir.cleanup()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    @property
    def path(self) -> Path:
        assert self._dir is not None, "use SortedImport as a context manager"
        return Path(self._dir.name)

    @property
    def runs(self) -> list[Run]:
        """The runs on disk now (for tests and the summary)."""
        return list(self._runs)

    # ------------------------------------------------------------------ disk
    def _estimate_bytes(self) -> int:
        """Bytes the spilled runs take (twice that when runs must be merged in groups)."""
        scan = self.scan
        n = scan.n_requests
        if scan.n_blocks is not None:
            blocks = scan.n_blocks
        else:  # logs: at most about a token per byte of input, plus a partial block each
            blocks = scan.path.stat().st_size // scan.block_tokens + n
        total = n * REQUEST_DTYPE.itemsize + blocks * self.blk_bytes
        n_runs = -(-n // self.run_requests)
        return total * (2 if n_runs > self.fan_in else 1)

    def _check_disk(self, need_bytes: int, what: str) -> None:
        free = shutil.disk_usage(self.path).free
        if free < need_bytes + _DISK_MARGIN_BYTES:
            raise InputError(
                f"not enough free disk for {what}: about {need_bytes / 1e6:.0f} MB needed, "
                f"{free / 1e6:.0f} MB free (set TMPDIR to a folder on a larger disk)",
                source=self.path.parent)

    # ------------------------------------------------------------------ spill
    def _spill(self) -> None:
        """Parse the input in file order, a run at a time; sort and write each run."""
        scan = self.scan
        if scan.format == "alibaba":
            rows: AlibabaRows | LogRows = AlibabaRows(scan.path, scan.block_tokens)
        else:
            assert scan.tokenizer is not None
            rows = LogRows(scan.path, scan.block_tokens, scan.tokenizer, scan.models)
        lines = array("q")

        def flush() -> None:
            trace = rows.take(scan.types) if scan.format == "alibaba" else rows.take(scan.t_min)
            if self._meta is None:
                self._models, self._meta = trace.models, dict(trace.meta)
            batch = _records(trace, np.frombuffer(lines, dtype=np.int64), scan.format)
            del trace  # the parsed columns (copied into the records): one copy less at a time
            batch = _sorted(batch)
            del lines[:]
            self._runs.append(self._write([batch]))

        for lineno, obj in json_lines(scan.path):
            rows.add(lineno, obj)
            lines.append(lineno)
            if len(rows) >= self.run_requests:
                flush()
        if len(rows):
            flush()
        while len(self._runs) > self.fan_in:  # merge in groups until one merge can take all
            groups = [self._runs[i:i + self.fan_in]
                      for i in range(0, len(self._runs), self.fan_in)]
            merged = []
            for group in groups:
                if len(group) == 1:
                    merged.append(group[0])
                    continue
                merged.append(self._write(merge_runs(group, scan.format, self.merge_requests)))
                for r in group:  # merged: their bytes are in the new run
                    r.req.unlink()
                    r.blk.unlink()
            self._runs = merged

    def _write(self, batches) -> Run:
        """Write sorted batches as one run file pair."""
        self._n += 1
        req_path, blk_path = self.path / f"run{self._n}.req", self.path / f"run{self._n}.blk"
        n_req = n_blk = 0
        with req_path.open("wb") as fr, blk_path.open("wb") as fb:
            for b in batches:
                self._check_disk(b.req.nbytes + b.blk.nbytes, "the sort's next run")
                fr.write(np.ascontiguousarray(b.req).data)  # no copy: they are contiguous
                fb.write(np.ascontiguousarray(b.blk).data)
                n_req, n_blk = n_req + len(b.req), n_blk + len(b.blk)
        return Run(req_path, blk_path, n_req, n_blk)

    # ------------------------------------------------------------------ read back
    def chunks(self, chunk_requests: int) -> Iterator[Trace]:
        """The whole input in the stable time order, ``chunk_requests`` requests a chunk; the
        chunks joined equal the whole-file reader's trace."""
        assert self._meta is not None, "use SortedImport as a context manager"
        for parts in _rechunk(merge_runs(self._runs, self.scan.format, self.merge_requests),
                              chunk_requests):
            yield self._trace(parts)

    def _trace(self, parts: list[Batch]) -> Trace:
        """One chunk's trace from its batches, each column joined straight from them."""

        def req(name: str) -> np.ndarray:
            return np.concatenate([p.req[name] for p in parts])

        def blk(name: str) -> np.ndarray:
            return np.concatenate([p.blk[name] for p in parts])

        n_blocks = req("n_blocks")
        offsets = np.zeros(len(n_blocks) + 1, dtype=np.int64)
        np.cumsum(n_blocks, out=offsets[1:])
        log = self.scan.format == "openai-log"
        trace = Trace.from_arrays(
            block_tokens=self.scan.block_tokens, arrival_s=req("arrival_s"),
            input_tokens=req("input_tokens"), output_tokens=req("output_tokens"),
            block_offsets=offsets, block_hashes=blk("hash"), session_ids=req("session"),
            tenant_ids=req("tenant"), model_index=req("model"), models=self._models,
            block_tags=blk("tag") if log else None, content_hashes=blk("content") if log else None,
            meta=dict(self._meta), validate=False)
        trace.validate()
        return trace
