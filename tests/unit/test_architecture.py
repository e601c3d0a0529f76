"""Architecture rules, checked over the whole source tree with ``ast`` (no imports are run).

- no import cycle between packages (``simkv.trace``, ``simkv.cache``, ... and ``harness``) nor
  between files; every ``import`` counts, also those inside functions (a deferred import hides
  a cycle from the interpreter, not from a reader) and under ``TYPE_CHECKING``;
- ``simkv`` never imports ``harness`` (the harness may import simkv);
- no ``importlib`` indirection (``import_module``, ``__import__``, spec loading); reading package
  data (``importlib.resources``) and versions (``importlib.metadata``) is not indirection.  The one
  exception is the CLI's command discovery, ``simkv/cli/main.py``;
- no handler of ``except:``, ``except Exception`` or ``except BaseException`` that swallows the
  error (one that raises again is fine);
- no file over 400 lines, no function over 80 lines;
- one linked-list implementation: only ``simkv/cache/statemachine.py`` defines a list primitive
  (a function named like ``unlink`` / ``link_*`` / ``push_front`` / ``move_mru``) or writes
  links (``nxt[p] = q`` with ``prev[q] = p``, over two arrays that some slot indexes both of).

A failure lists every offending file (and line), so the fix list is complete in one run.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("simkv", "harness")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
#: the CLI finds its ``cmd_*`` modules by name; nothing else may import by string
IMPORTLIB_ALLOWED = {"simkv/cli/main.py"}
#: submodules of importlib that read metadata or package data instead of importing code
IMPORTLIB_BENIGN = {"importlib.metadata", "importlib.resources"}
CATCH_ALL = {"Exception", "BaseException"}
#: the one module that may write linked-list links (every cache model composes it)
STATE_MACHINE = "simkv/cache/statemachine.py"
LIST_PRIMITIVE = re.compile(r"_*(un)?link(_\w+)?|_*push_(front|back|head|tail|mru|lru)"
                            r"|_*move_(to_)?(front|back|head|tail|mru|lru)")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def _sources() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of the trees: dotted name -> (path, parsed tree)."""
    out: dict[str, tuple[Path, ast.Module]] = {}
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            out[_module_name(path)] = (path, ast.parse(path.read_text(), filename=str(path)))
    return out


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _is_package(name: str) -> bool:
    path, _ = _sources()[name]
    return path.name == "__init__.py"


def _imported(name: str, tree: ast.Module) -> set[str]:
    """Modules of the trees that module ``name`` imports (``from a import b``: ``a.b`` if a module)."""
    mods = _sources()
    package = name if _is_package(name) else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        for t in targets:
            while t and t not in mods:  # ``import a.b.c`` of a package path: nearest known module
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "simkv" else parts[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _file_graph() -> dict[str, set[str]]:
    return {name: _imported(name, tree) for name, (_, tree) in _sources().items()}


def _edge_list(graph: dict[str, set[str]], comp: list[str]) -> str:
    members = set(comp)
    return "; ".join(f"{a} -> {b}" for a in comp for b in sorted(graph[a] & members))


def test_no_import_cycle_between_files():
    graph = _file_graph()
    bad = [_edge_list(graph, c) for c in _cycles(graph)]
    assert not bad, "import cycles between files:\n" + "\n".join(bad)


def test_no_import_cycle_between_packages():
    files = _file_graph()
    graph: dict[str, set[str]] = {}
    why: dict[tuple[str, str], str] = {}
    for a, targets in files.items():
        pa = _package_of(a)
        graph.setdefault(pa, set())
        for b in targets:
            pb = _package_of(b)
            if pa != pb:
                graph[pa].add(pb)
                why.setdefault((pa, pb), f"{a} -> {b}")
    bad = []
    for comp in _cycles(graph):
        members = set(comp)
        edges = [why[(a, b)] for a in comp for b in sorted(graph[a] & members)]
        bad.append(f"{' <-> '.join(comp)}: " + "; ".join(edges))
    assert not bad, "import cycles between packages:\n" + "\n".join(bad)


def test_simkv_never_imports_harness():
    bad = [f"{_rel(_sources()[a][0])} imports {b}" for a, targets in _file_graph().items()
           if a.startswith("simkv") for b in targets if _package_of(b) == "harness"]
    assert not bad, "\n".join(bad)


def _importlib_uses(tree: ast.Module) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            lines += [node.lineno for a in node.names
                      if a.name.split(".")[0] == "importlib" and a.name not in IMPORTLIB_BENIGN]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "importlib":
            if node.module not in IMPORTLIB_BENIGN and not (
                    node.module == "importlib" and all(f"importlib.{a.name}" in IMPORTLIB_BENIGN
                                                       for a in node.names)):
                lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "__import__"):
            lines.append(node.lineno)
    return lines


def test_no_importlib_indirection():
    bad = [f"{_rel(path)}:{line}" for path, tree in _sources().values()
           if _rel(path) not in IMPORTLIB_ALLOWED for line in _importlib_uses(tree)]
    assert not bad, "importlib indirection (import the module by name instead):\n" + "\n".join(bad)


def test_the_importlib_exception_is_still_needed():
    """The allow-list names only files that use importlib (a stale exception would hide a new one)."""
    for rel in IMPORTLIB_ALLOWED:
        assert _importlib_uses(ast.parse((ROOT / rel).read_text())), rel


def _catches_all(handler: ast.ExceptHandler) -> bool:
    t = handler.type
    if t is None:
        return True
    names = t.elts if isinstance(t, ast.Tuple) else [t]
    return any(isinstance(n, ast.Name) and n.id in CATCH_ALL for n in names)


def _swallowing_handlers(tree: ast.Module) -> list[int]:
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.ExceptHandler) and _catches_all(node)
            and not any(isinstance(n, ast.Raise) for stmt in node.body for n in ast.walk(stmt))]


def test_no_catch_all_except_that_swallows():
    bad = [f"{_rel(path)}:{line}" for path, tree in _sources().values()
           for line in _swallowing_handlers(tree)]
    assert not bad, "catch-all except handlers that do not re-raise:\n" + "\n".join(bad)


def test_no_file_over_400_lines():
    bad = []
    for path, _ in _sources().values():
        n = len(path.read_text().splitlines())
        if n > MAX_FILE_LINES:
            bad.append(f"{_rel(path)}: {n} lines")
    assert not bad, f"files over {MAX_FILE_LINES} lines:\n" + "\n".join(bad)


def test_no_function_over_80_lines():
    bad = []
    for path, tree in _sources().values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    bad.append(f"{_rel(path)}:{node.lineno} {node.name}: {n} lines")
    assert not bad, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(bad)


def _subscript_writes(fn: ast.AST) -> list[tuple[str, str, str, int]]:
    """``X[a] = b`` in ``fn`` (tuple assignments unpacked): (X, a, b, line) as ``ast.dump``s."""
    out = []
    for node in ast.walk(fn):
        if not isinstance(node, ast.Assign):
            continue
        for tgt in node.targets:
            pairs = [(tgt, node.value)]
            if isinstance(tgt, ast.Tuple) and isinstance(node.value, ast.Tuple) \
                    and len(tgt.elts) == len(node.value.elts):
                pairs = list(zip(tgt.elts, node.value.elts, strict=True))
            out += [(ast.dump(t.value), ast.dump(t.slice), ast.dump(v), node.lineno)
                    for t, v in pairs if isinstance(t, ast.Subscript)]
    return out


def _link_writes(fn: ast.AST) -> list[int]:
    """Lines writing a pair of links ``X[a] = b`` / ``Y[b] = a`` (X != Y) where some index is
    used on both X and Y, as a slot of a doubly linked list is.  (An index and its inverse,
    e.g. position -> object and object -> position, has the pair shape but no such slot.)"""
    writes = _subscript_writes(fn)
    index_of: dict[str, set[str]] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Subscript):
            index_of.setdefault(ast.dump(node.value), set()).add(ast.dump(node.slice))
    lines = set()
    for x, a, b, line in writes:
        for y, a2, b2, line2 in writes:
            if x != y and a2 == b and b2 == a and index_of[x] & index_of[y]:
                lines |= {line, line2}
    return sorted(lines)


def _list_primitives(tree: ast.Module) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if LIST_PRIMITIVE.fullmatch(node.name):
                out.append(f"{node.lineno} defines {node.name}")
            out += [f"{line} writes links in {node.name}" for line in _link_writes(node)]
    return out


def test_one_linked_list_implementation():
    """The engine kernels, storage levels, the vLLM pool and the LMCache L1 compose
    ``simkv.cache.statemachine``; a second copy of its list operations fails here."""
    bad = [f"{_rel(path)}:{hit}" for path, tree in _sources().values()
           if _rel(path) != STATE_MACHINE for hit in _list_primitives(tree)]
    assert not bad, (f"linked-list operations outside {STATE_MACHINE} (call its primitives):\n"
                     + "\n".join(bad))


def test_the_state_machine_is_where_the_links_are():
    """The check above looks at the right module (it finds the primitives there)."""
    hits = _list_primitives(_sources()["simkv.cache.statemachine"][1])
    assert any("defines unlink" in h for h in hits) and any("writes links" in h for h in hits)


# --- the checkers themselves: each must catch what it claims to ---------------------------------

def _parse(src: str) -> ast.Module:
    return ast.parse(src)


def test_checker_finds_a_cycle_and_ignores_a_chain():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize("src, swallows", [
    ("try:\n    x()\nexcept:\n    pass\n", True),
    ("try:\n    x()\nexcept Exception:\n    y = 1\n", True),
    ("try:\n    x()\nexcept (ValueError, BaseException) as e:\n    log(e)\n", True),
    ("try:\n    x()\nexcept Exception:\n    cleanup()\n    raise\n", False),
    ("try:\n    x()\nexcept ValueError:\n    pass\n", False),
])
def test_checker_flags_swallowing_handlers(src, swallows):
    assert bool(_swallowing_handlers(_parse(src))) is swallows


@pytest.mark.parametrize("src, flagged", [
    ("import importlib\n", True),
    ("from importlib import import_module\n", True),
    ("m = __import__('os')\n", True),
    ("import importlib.util\n", True),
    ("import importlib.metadata\n", False),
    ("from importlib import resources\n", False),
    ("from importlib.metadata import version\n", False),
])
def test_checker_flags_importlib(src, flagged):
    assert bool(_importlib_uses(_parse(src))) is flagged


def test_checker_resolves_imports_of_this_tree():
    """A known edge is seen (guards against a resolver that silently finds nothing)."""
    graph = _file_graph()
    assert "simkv.trace.model" in graph["simkv.trace.rechunk"]
    assert "simkv.hashing" in graph["simkv.trace.rechunk"]
    assert "simkv.hashing" in graph["harness.prompts"]
    assert _package_of("simkv.cache.engine") == "simkv.cache" and _package_of("harness.cli") == "harness"


#: the engine kernels' own list before they composed the state machine (sentinel at the end)
OLD_KERNEL_LIST = """
def _unlink(prev, nxt, o):
    p = prev[o]
    q = nxt[o]
    nxt[p] = q
    prev[q] = p

def _push_front(prev, nxt, s, o):
    first = nxt[s]
    nxt[o] = first
    prev[o] = s
    prev[first] = o
    nxt[s] = o
"""


@pytest.mark.parametrize("src, flagged", [
    (OLD_KERNEL_LIST, True),
    # the same operations inlined into a kernel under other names
    ("def run(left, right, ids):\n    for o in ids:\n        a = left[o]\n        b = right[o]\n"
     "        right[a] = b\n        left[b] = a\n", True),
    ("def touch(fwd, back, o):\n    fwd[o], back[fwd[0]] = fwd[0], o\n    back[o] = 0\n"
     "    fwd[0], back[o] = o, fwd[0]\n", True),
    ("def link_tail(a, b, o):\n    pass\n", True),
    # an index and its inverse (sizing's compaction of positions) is not a list
    ("def compact(pos_obj, last_pos, k):\n    w = 0\n    for q in range(k):\n"
     "        o = pos_obj[q]\n        pos_obj[w] = o\n        last_pos[o] = w\n        w += 1\n",
     False),
    ("def swap(h, a, b):\n    h[a], h[b] = h[b], h[a]\n", False),
    ("def call(prev, nxt, o):\n    unlink(prev, nxt, o)\n    link_mru(prev, nxt, o)\n", False),
])
def test_checker_flags_list_primitives(src, flagged):
    assert bool(_list_primitives(_parse(src))) is flagged
