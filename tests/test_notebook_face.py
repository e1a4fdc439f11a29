"""The notebook face keeps to its room: it reads runs only through the public contract, touches
ipykernel internals in one module, and stays in modules of a readable size."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "notebook_workflows"
DOORS = [PACKAGE / "widgets.py", PACKAGE / "graph.py"]
FACE = sorted([*(PACKAGE / "notebook").rglob("*.py"), *DOORS])
ENGINE_INTERNALS = re.compile(r"_driver|\._state\b|_encoded|\.\._loop|\.\.\._loop|_END\b")
KERNEL_INTERNALS = re.compile(r"_parent_header|register_hook|pub_thread|display_pub|_flush_pending")


def test_the_face_reads_no_engine_internals() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in FACE
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ENGINE_INTERNALS.search(line)
    ]
    assert found == []


def test_ipykernel_internals_are_touched_in_one_module() -> None:
    users = {p.name for p in FACE if KERNEL_INTERNALS.search(p.read_text(encoding="utf-8"))}
    assert users == {"kernel_io.py"}
    assert "SUPPORTED" in (PACKAGE / "notebook" / "monitor" / "kernel_io.py").read_text()


def test_every_module_says_what_it_is_for_and_stays_readable() -> None:
    for path in FACE:
        source = path.read_text(encoding="utf-8")
        assert ast.get_docstring(ast.parse(source)), path
        assert len(source.splitlines()) <= 600, path
