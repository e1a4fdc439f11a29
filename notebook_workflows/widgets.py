"""``notebook_workflows.widgets``: where ``RunMonitor`` has always been imported from.

The monitor lives in the notebook layer (``notebook_workflows.notebook.monitor``, split by
concept); the run browser in ``notebook_workflows.notebook.browser``. This module keeps the
public import paths. ipywidgets is imported when a widget is made, not here.
"""

from __future__ import annotations

from typing import Any

from .notebook.monitor import (
    GRAPH_HEIGHT,
    GRAPH_INTERVAL,
    HEARTBEAT,
    LOG_BURST,
    LOG_SIZE,
    REFRESH_INTERVAL,
    RunMonitor,
)

__all__ = [  # and RunBrowser, loaded on first use
    "GRAPH_HEIGHT",
    "GRAPH_INTERVAL",
    "HEARTBEAT",
    "LOG_BURST",
    "LOG_SIZE",
    "REFRESH_INTERVAL",
    "RunMonitor",
]


def __getattr__(name: str) -> Any:
    if name == "RunBrowser":  # lazily: it needs the checkpoint layer
        from .notebook.browser import RunBrowser

        return RunBrowser
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
