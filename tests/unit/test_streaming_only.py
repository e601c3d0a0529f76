"""The streaming path is the only path: no CLI command and no pipeline module loads a whole
trace, except where the list below says why it must (checked with ``ast``, nothing imported).

A whole-trace loader is a call of ``load_trace``, of a format's whole-file reader
(``read_parquet``, ``read_mooncake``, ``read_alibaba``, ``read_openai_log``), of
``reassemble`` (a partition rebuilt in memory), or ``.load()`` on a ``TraceSource``.  Each
allowed use names its file and function and the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHOLE_LOADERS = {"load_trace", "read_parquet", "read_mooncake", "read_alibaba",
                 "read_openai_log", "reassemble"}

#: (file, function) -> why it holds the whole trace; none is left (Belady spills to disk, the
#: report's stages split a model mix as a stream, trace import sorts out-of-order input
#: externally), and a new entry needs a reason here
ALLOWED: dict[tuple[str, str], str] = {}


def _files() -> list[Path]:
    return sorted([*ROOT.glob("simkv/cli/cmd_*.py"), *ROOT.glob("simkv/pipeline/**/*.py")])


def _whole_loads(tree: ast.AST) -> list[tuple[str, int, str]]:
    """(enclosing function, line, callee) of every whole-trace load in ``tree``."""
    found = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else func
            if isinstance(child, ast.Call):
                f = child.func
                callee = f.id if isinstance(f, ast.Name) else \
                    f.attr if isinstance(f, ast.Attribute) else ""
                if callee in WHOLE_LOADERS:
                    found.append((func, child.lineno, callee))
                elif callee == "load" and isinstance(f, ast.Attribute) and \
                        any(w in ast.unparse(f.value).lower() for w in ("source", "chunks")):
                    found.append((func, child.lineno, ast.unparse(f)))
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_no_whole_trace_loads_outside_the_list():
    bad, used = [], set()
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        for func, line, callee in _whole_loads(ast.parse(path.read_text())):
            if (rel, func) in ALLOWED:
                used.add((rel, func))
            else:
                bad.append(f"{rel}:{line} {func} calls {callee}")
    assert not bad, "whole-trace loads outside tests/unit/test_streaming_only.py's list:\n" + \
        "\n".join(bad)
    assert used == set(ALLOWED), f"stale entries (no longer load): {set(ALLOWED) - used}"


def test_the_scan_finds_a_load():
    """The scanner itself: each kind of whole load is found, a streamed read is not."""
    src = ("def f(p, source):\n    t = load_trace(p)\n    u = source.load()\n"
           "    v = TraceSource.of(p).load()\n    w = self.chunks.load()\n"
           "    for c in source.chunks(7):\n        pass\n")
    assert [(f, c) for f, _, c in _whole_loads(ast.parse(src))] == [
        ("f", "load_trace"), ("f", "source.load"), ("f", "TraceSource.of(p).load"),
        ("f", "self.chunks.load")]


#: whole-trace column helpers of a bill (tests and small traces only): a command, a pipeline
#: stage or a price book that called one would hold a column per request again
WHOLE_COLUMN_HELPERS = {"whole", "sub_trace", "breakpoint_hits", "unit_hit_tokens"}


def _column_loads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every call or attribute read of a whole-column helper, outside the
    helpers' own definitions (and ``rows``, the eligible indices they are built on)."""
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    child.name in WHOLE_COLUMN_HELPERS | {"rows"}:
                continue
            if isinstance(child, ast.Call):
                f = child.func
                name = f.id if isinstance(f, ast.Name) else \
                    f.attr if isinstance(f, ast.Attribute) else ""
                if name in WHOLE_COLUMN_HELPERS - {"sub_trace"}:
                    found.append((child.lineno, name))
            elif isinstance(child, ast.Attribute) and child.attr == "sub_trace":
                found.append((child.lineno, child.attr))
            visit(child)

    visit(tree)
    return found


def test_bills_never_hold_a_whole_column():
    """Price books, the economics passes, the commands and the stages read a bill's
    per-request columns and cache-run outcomes a chunk at a time (``View``), never whole."""
    files = sorted({*_files(), *ROOT.glob("simkv/economics/**/*.py"),
                    *ROOT.glob("simkv/report/**/*.py")})
    bad = [f"{p.relative_to(ROOT).as_posix()}:{line} {name}" for p in files
           for line, name in _column_loads(ast.parse(p.read_text()))]
    assert not bad, "whole-column reads in bill code:\n" + "\n".join(bad)


def test_the_column_scan_finds_a_read():
    src = ("def f(run, ctx):\n    a = run.whole('hit_tokens')\n    b = run.sub_trace\n"
           "    c = breakpoint_hits(ctx, run)\n    d = run.chunk(cols)\n")
    assert [n for _, n in _column_loads(ast.parse(src))] == ["whole", "sub_trace",
                                                             "breakpoint_hits"]
