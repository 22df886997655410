"""The code's layout holds: no import cycles between the project's modules, and no
module (or pipeline function) grows past what one reader holds in mind without
saying why ("Long because ..." in its docstring).

The import graph is read with ``ast`` from every module of ``pipeline``, ``infra``
and ``policy``: imports at the top, inside functions and under ``TYPE_CHECKING``
alike (a cycle hidden in a function is still a cycle in the design).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGES = ("pipeline", "infra", "policy")
MAX_LINES = 420
MAX_FUNCTION_LINES = 150


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """The project modules ``path`` imports (``from a.b import c`` is ``a.b.c`` if c is one)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in MODULES
                else node.module
                for alias in node.names
            ]
        else:
            continue
        yield from (name for name in names if name in MODULES)


def _graph() -> dict[str, set[str]]:
    return {name: set(_imports(path)) - {name} for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
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


def test_the_graph_sees_the_layout() -> None:
    # The reader itself works: a command reaches the core through lazy imports.
    graph = _graph()
    assert "pipeline.images.refs" in graph["infra.config.parse"]
    assert "pipeline.promotion.gates" in graph["pipeline.commands.promote"]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycles_between_the_projects_modules() -> None:
    assert _cycles(_graph()) == []


def test_the_grammar_modules_import_nothing_heavy() -> None:
    # infra and policy import these: they must not pull in the pipeline's I/O.
    for name in ("pipeline.images.refs", "pipeline.secrets", "pipeline.errors"):
        assert _graph()[name] <= {"pipeline.errors"}, name


@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_no_module_is_longer_than_a_reader_holds_without_saying_why(name: str) -> None:
    path = MODULES[name]
    lines = path.read_text().count("\n")
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert lines <= MAX_LINES or "Long because" in docstring, f"{path}: {lines} lines"


def _functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for name, path in MODULES.items():
        if not name.startswith("pipeline"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((f"{name}.{node.name}", node))
    return found


def test_no_pipeline_function_is_longer_than_a_screenful_without_saying_why() -> None:
    long = [
        f"{name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, node in _functions()
        if node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        and "Long because" not in (ast.get_docstring(node) or "")
    ]
    assert long == []
