"""The notebook face: how a workflow and its runs look in Jupyter.

It reads runs only through the engine's public contract (``handler.view()``,
``handler.subscribe``, ``add_done_callback``, ``add_step_context``, the checkpoint stores'
``runs``/``history``) and never the other way round: the engine's thin doors
(``Workflow.draw``, ``handler.draw``, ``handler.monitor``, the handler's rich display) reach
``_doors`` through a port the engine owns (``_ports.NotebookFace``), not by importing here.

- ``graph`` (with ``graph_model`` and ``graph_text``): ``WorkflowGraph``, DOT/SVG/Mermaid.
- ``display``: the plain-text and HTML pictures of a handler, and the formatting helpers.
- ``timeline``: the strip of step invocations over time, for a live run and a stored one.
- ``monitor/``: ``RunMonitor``, the live widget of one run.
- ``browser``: ``RunBrowser``, the runs kept in a checkpoint store.
- ``rundiff``: ``RunDiff``, two stored runs side by side and where they part.
- ``export``: ``export_html``, one stored run as one self-contained HTML page.

Nothing here is imported by ``import notebook_workflows``; ipywidgets and graphviz load only
when a widget is made or a graph drawn.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunBrowser", "RunDiff", "RunMonitor", "WorkflowGraph", "export_html"]


def __getattr__(name: str) -> Any:
    if name == "RunMonitor":
        from .monitor import RunMonitor

        return RunMonitor
    if name == "RunBrowser":
        from .browser import RunBrowser

        return RunBrowser
    if name == "RunDiff":
        from .rundiff import RunDiff

        return RunDiff
    if name == "export_html":
        from .export import export_html

        return export_html
    if name == "WorkflowGraph":
        from .graph import WorkflowGraph

        return WorkflowGraph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
