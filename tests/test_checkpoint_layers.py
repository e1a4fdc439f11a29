"""The durable layer stands on its own: it imports nothing from the notebook face."""

from __future__ import annotations

import ast
from pathlib import Path

import notebook_workflows.checkpoint as checkpoint

NOTEBOOK_FACE = {"notebook", "widgets", "graph"}


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
            found.update("." * node.level + alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_checkpoint_module_imports_the_notebook_face() -> None:
    folder = Path(checkpoint.__file__).parent
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if NOTEBOOK_FACE & set(m.split(".")))
        for path in sorted(folder.glob("*.py"))
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_the_durable_layer_has_its_own_text_helpers() -> None:
    from notebook_workflows.checkpoint.listing import plural, printable

    assert (plural(1, "step"), plural(2, "step")) == ("step", "steps")
    assert printable("a\x1b]0;owned\x07b\nc\u202ed") == "a\\x1b]0;owned\\x07b\\nc\\u202ed"
    assert printable("café ☕ run-1") == "café ☕ run-1"
