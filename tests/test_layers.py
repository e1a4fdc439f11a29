"""The house: three layers with arrows one way, and no import circles.

Engine (events, step, runtime/, context, handler, workflow, and the value codec the store
keeps its values in: codec/, serialization) <- durable (snapshot, checkpoint/) <- notebook face
and tools (notebook/, graph, widgets, display, the command line).
Read from each module's top-level imports (``if TYPE_CHECKING:`` blocks and the lazy doors
inside functions, such as ``Workflow.draw``, are not arrows at import time).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "notebook_workflows"
FACE = ("notebook", "graph", "widgets", "_display", "__main__")
DURABLE = ("snapshot", "checkpoint")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_at_load(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.ImportFrom):
            continue
        base = package.split(".")
        if node.level:
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        submodules = [f"{target}.{alias.name}" for alias in node.names]
        hits = [m for m in submodules if m in known] or ([target] if target in known else [])
        out.update(m for m in hits if m != name)
    return out


def layer(name: str) -> str:
    first = name.split(".")[1] if "." in name else ""
    if first in FACE:
        return "face"
    if first in DURABLE:
        return "durable"
    return "engine"


def test_arrows_point_one_way() -> None:
    known = modules()
    rank = {"engine": 0, "durable": 1, "face": 2}
    upward = []
    for name, path in known.items():
        if name == "notebook_workflows":
            continue  # the public face re-exports from every layer
        for target in imports_at_load(name, path, known):
            if rank[layer(target)] > rank[layer(name)]:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_no_import_circles() -> None:
    known = modules()
    graph = {name: imports_at_load(name, path, known) for name, path in known.items()}
    circles = []

    def reach(start: str) -> None:
        seen, todo = set(), list(graph[start])
        while todo:
            node = todo.pop()
            if node == start:
                circles.append(start)
                return
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))

    for name in graph:
        reach(name)
    assert circles == []
