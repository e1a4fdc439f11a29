"""The notebook face's side of the engine's port (``_ports.NotebookFace``).

``Workflow.draw``, ``handler.draw``, ``handler.monitor``, the handler's rich display and the
status line of a run awaited in a cell come in here. The engine never imports the notebook
face: it asks the port, and the package's public face (``_wiring``) hands it this module.
Each door loads only the part it shows (the display text does not load the graph or the
widgets), as the doors always did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from .graph import WorkflowGraph
    from .monitor import RunMonitor

__all__ = [
    "export_html",
    "handler_html",
    "handler_text",
    "monitor",
    "run_graph",
    "status_line",
    "workflow_graph",
]


def workflow_graph(workflow: Any, direction: str) -> WorkflowGraph:
    from .graph import WorkflowGraph

    return WorkflowGraph.of_workflow(workflow, direction=direction)


def run_graph(handler: Any, direction: str) -> WorkflowGraph:
    from .graph import WorkflowGraph

    return WorkflowGraph.of_run(handler, direction=direction)


def monitor(handler: Any) -> RunMonitor:
    from .monitor import RunMonitor

    return RunMonitor(handler)


def handler_text(handler: Any) -> str:
    from .display import handler_text

    return handler_text(handler)


def handler_html(handler: Any) -> str:
    from .display import handler_html

    return handler_html(handler)


def export_html(store: Any, run_id: str, path: Any) -> Path:
    """``handler.export_html``: the run as one offline page (``notebook.export``)."""
    from .export import export_html as write

    return write(store, run_id, path)


def status_line(handler: Any) -> None:
    """A run started in a notebook kernel: its line of status, if a cell awaits it long
    enough (``notebook.status``)."""
    from .status import follow

    follow(handler)
