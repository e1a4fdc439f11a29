"""Notebook 08 promises that its workflow is LlamaIndex Workflows code with only the import lines
changed. nbval checks what the notebook prints; these tests check that the promise is kept in
its source: every import has the peer's line above it, and the ported part names nothing else of
this package."""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "08_porting_from_llamaindex.ipynb"


def code_cells_before(heading: str) -> list[str]:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code: list[str] = []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and heading in source:
            return code
        if cell["cell_type"] == "code":
            code.append(source)
    raise AssertionError(f"no markdown cell with {heading!r} in {NOTEBOOK.name}")


def test_every_import_of_this_package_sits_under_the_peers_line_with_the_package_renamed() -> None:
    lines = code_cells_before("On top")[0].splitlines()
    ours = [i for i, line in enumerate(lines) if line.startswith("from notebook_workflows")]
    assert len(ours) >= 5
    for i in ours:
        peer = lines[i - 1]
        assert peer.startswith("# from workflows"), f"no peer import above {lines[i]!r}"
        assert peer[2:].replace("workflows", "notebook_workflows", 1) == lines[i]


def test_the_ported_workflow_names_nothing_of_this_package_beyond_the_import_lines() -> None:
    _imports, *rest = code_cells_before("On top")
    assert rest, "the ported part has no cells after the imports"
    for source in rest:
        assert "notebook_workflows" not in source
