"""``notebook_workflows.graph``: where ``WorkflowGraph`` has always been imported from.

The graph lives in the notebook layer (``notebook_workflows.notebook.graph``, with its model in
``graph_model`` and its DOT and Mermaid printers in ``graph_text``); this module keeps the public
import path.
"""

from .notebook.graph import (
    INSTALL_HINT,
    SAVE_SUFFIXES,
    GraphRenderError,
    WorkflowGraph,
)

__all__ = ["INSTALL_HINT", "SAVE_SUFFIXES", "GraphRenderError", "WorkflowGraph"]
