"""The house: three layers with arrows one way, and no import circles.

Engine (events, step, runtime/, context, handler, workflow, the value codec the store keeps
its values in: codec/, serialization, and the context snapshot format of ``ctx.to_dict()``:
snapshot) <- durable (checkpoint/) <- notebook face and tools (notebook/, graph, widgets,
the command line) <- the public face (``notebook_workflows/__init__`` and ``_wiring``,
which plugs the upper layers into the ports the engine owns, ``_ports``).

An arrow is every ``import`` and ``from ... import`` of one of the package's modules, wherever
it is written: at the top of a module, inside a function or method (the lazy doors such as
``Workflow.draw``), under ``try`` or ``if``. An import made inside a function still needs the
module it names, so it counts. Two kinds are left out, each for a reason:

* imports under ``if TYPE_CHECKING:`` never run; they give the type checker a name for an
  annotation and order no loading, so they cannot make a circle when the code runs;
* the parent packages Python loads on the way to a submodule (``notebook_workflows`` itself, the
  public face that re-exports from every layer): counting them would put every module in one
  circle and say nothing about the module that wrote the import.

Run this file as a script (``python tests/test_layers.py``) to print the import graph that
docs/architecture.md shows.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "notebook_workflows"
FACE = ("notebook", "graph", "widgets", "__main__")
DURABLE = ("checkpoint",)
TOP = ("notebook_workflows", "notebook_workflows._wiring")


# Circles not broken yet, by their modules, each with why it is still there. A circle that
# grows, shrinks or appears fails the test; one that is gone fails it too, until it is struck
# from this list.
def _named(*short: str) -> frozenset[str]:
    return frozenset(
        f"notebook_workflows.{name}" if name else "notebook_workflows" for name in short
    )


KNOWN_CIRCLES: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    line: int
    lazy: bool  # written inside a function, not at the module's top level

    def __str__(self) -> str:
        where = "inside a function" if self.lazy else "at the top"
        return f"{self.source} -> {self.target} (line {self.line}, {where})"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    if isinstance(test, ast.Attribute):  # typing.TYPE_CHECKING
        return test.attr == "TYPE_CHECKING"
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _import_nodes(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it sits inside a function; TYPE_CHECKING skipped."""
    out: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
    todo: list[tuple[ast.AST, bool]] = [(tree, False)]
    while todo:
        node, lazy = todo.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                todo.extend((orelse, lazy) for orelse in child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append((child, lazy))
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            todo.append((child, inner))
    return out


def _targets(node: ast.Import | ast.ImportFrom, package: str, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if node.level:
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    # ``from .runtime import state`` names the submodule; ``from .runtime import RunState`` the
    # package it comes from
    submodules = [f"{target}.{alias.name}" for alias in node.names]
    return [m for m in submodules if m in known] or ([target] if target in known else [])


def arrows(name: str, path: Path, known: dict[str, Path]) -> list[Arrow]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node, lazy in _import_nodes(ast.parse(path.read_text())):
        for target in _targets(node, package, known):
            if target != name:
                out.append(Arrow(name, target, node.lineno, lazy))
    return sorted(out, key=lambda a: (a.target, a.line))


def import_graph() -> dict[str, list[Arrow]]:
    known = modules()
    return {name: arrows(name, path, known) for name, path in sorted(known.items())}


def circles(graph: dict[str, list[Arrow]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for arrow in graph[name]:
            if arrow.target not in index:
                visit(arrow.target)
                low[name] = min(low[name], low[arrow.target])
            elif arrow.target in stack:
                low[name] = min(low[name], index[arrow.target])
        if low[name] == index[name]:
            members = set()
            while True:
                member = stack.pop()
                members.add(member)
                if member == name:
                    break
            if len(members) > 1:
                found.append(frozenset(members))

    for name in graph:
        if name not in index:
            visit(name)
    return found


def describe(circle: frozenset[str], graph: dict[str, list[Arrow]]) -> str:
    inside = [str(a) for name in sorted(circle) for a in graph[name] if a.target in circle]
    return f"a circle of {len(circle)} modules:\n    " + "\n    ".join(inside)


def layer(name: str) -> str:
    if name in TOP:
        return "top"
    first = name.split(".")[1] if "." in name else ""
    if first in FACE:
        return "face"
    if first in DURABLE:
        return "durable"
    return "engine"


def test_the_reader_counts_imports_inside_functions_and_skips_type_checking() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import events\n"
        "if TYPE_CHECKING:\n"
        "    from .workflow import Workflow\n"
        "def door():\n"
        "    from .graph import WorkflowGraph\n"
        "class Thing:\n"
        "    def method(self):\n"
        "        import notebook_workflows.widgets\n"
    )
    known = modules()
    found = [
        (target, lazy)
        for node, lazy in _import_nodes(ast.parse(source))
        for target in _targets(node, "notebook_workflows", known)
    ]
    assert sorted(found) == [
        ("notebook_workflows.events", False),
        ("notebook_workflows.graph", True),
        ("notebook_workflows.widgets", True),
    ]


def test_arrows_point_one_way_counting_imports_inside_functions() -> None:
    """Engine <- durable <- notebook face <- public face: an engine door that opens a higher
    layer goes through a port (``_ports``), not through an import, even inside a method."""
    rank = {"engine": 0, "durable": 1, "face": 2, "top": 3}
    upward = [
        str(arrow)
        for name, found in import_graph().items()
        for arrow in found
        if rank[layer(arrow.target)] > rank[layer(name)]
    ]
    assert upward == []


def test_no_import_circles_counting_imports_inside_functions() -> None:
    graph = import_graph()
    found = circles(graph)
    new = [describe(c, graph) for c in found if c not in KNOWN_CIRCLES]
    gone = [sorted(c) for c in KNOWN_CIRCLES if c not in found]
    assert not new, "import circles:\n" + "\n".join(new)
    assert not gone, f"circles broken: strike them from KNOWN_CIRCLES: {gone}"


def test_the_architecture_page_shows_todays_graph(capsys: pytest.CaptureFixture[str]) -> None:
    main()
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    shown = page.split("## The import graph", 1)[1].split("```\n", 3)[3].split("```", 1)[0]
    assert shown == capsys.readouterr().out, "regenerate it: python tests/test_layers.py"


def main() -> None:
    """Print the import graph by layer, bottom first: each module with the package modules it
    imports (``*``: only inside a function), then any circle."""
    graph = import_graph()
    for level in ("engine", "durable", "face", "top"):
        sys.stdout.write(f"[{level}]\n")
        for name, found in graph.items():
            if layer(name) != level:
                continue
            lazy = {a.target for a in found if a.lazy} - {a.target for a in found if not a.lazy}
            shown = ", ".join(
                short(t) + ("*" if t in lazy else "") for t in sorted({a.target for a in found})
            )
            sys.stdout.write(f"  {short(name)} -> {shown or '(nothing of ours)'}\n")
    for circle in circles(graph):
        sys.stdout.write(describe(circle, graph) + "\n")


def short(name: str) -> str:
    return name.removeprefix("notebook_workflows.") if name != "notebook_workflows" else "(package)"


if __name__ == "__main__":
    main()
