"""The import graph: no cycles, and the worker never loads the synthetic streams.

The graph is read from the source (``ast``), not from ``sys.modules``: every ``import`` counts,
at module level, inside functions and under ``if TYPE_CHECKING:``, because a lazy import only
hides a cycle until the day someone hoists it. An edge ``a -> b`` means module ``a`` names
module ``b`` in an import; ``from pkg import name`` is an edge to ``pkg.name`` when that is a
module, else to ``pkg``. Parent packages are not implied (``import a.b.c`` is one edge, to
``a.b.c``), as Python itself resolves a half-imported parent without trouble.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "scoring", "benchmarks")
"""The code whose import graph must be acyclic."""
WORKER_MODULES = (
    "pipeline.worker",
    "pipeline.kafka_app",
    "pipeline.faust_app",
    "pipeline.faust_runner",
)
"""What ``influence worker`` runs; none of it may reach the synthetic streams."""
SYNTHETIC = "pipeline.synthetic"

Graph = dict[str, set[str]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(packages: Iterable[str]) -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imported(module: str, is_package: bool, tree: ast.AST, known: set[str]) -> Iterator[str]:
    """Every module ``module``'s source names in an import, resolved against ``known``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield child if child in known else base


def import_graph(packages: Iterable[str] = PACKAGES) -> Graph:
    """Module -> the modules of ``packages`` it imports (edges leaving them are dropped)."""
    sources = _sources(packages)
    known = set(sources)
    graph: Graph = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        graph[module] = {
            name for name in _imported(module, is_package, tree, known) if name in known
        } - {module}
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: Graph, roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    """The checker itself: a lazy import and a relative one are both edges, so a cycle through
    them is found."""
    tree = ast.parse("def f():\n    from . import b\n    import pkg.c\n")
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    assert set(_imported("pkg.a", False, tree, known)) == {"pkg.b", "pkg.c"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the walk found too few modules"
    assert cycles(graph) == []


def test_the_worker_never_reaches_the_synthetic_streams() -> None:
    """Statically: no import path, however lazy, from the worker's modules to the generator."""
    graph = import_graph()
    assert SYNTHETIC in graph
    leaked = sorted(m for m in reachable(graph, WORKER_MODULES) if m.startswith(SYNTHETIC))
    assert leaked == []


def test_importing_the_worker_and_the_cli_does_not_load_the_synthetic_streams() -> None:
    """At run time, in a fresh interpreter (this one has long imported everything)."""
    probe = (
        "import sys\n"
        f"import {', '.join(WORKER_MODULES)}, pipeline.cli\n"
        "pipeline.cli.build_parser()\n"
        f"print(sorted(m for m in sys.modules if m.startswith({SYNTHETIC!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
