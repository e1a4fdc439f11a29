"""RunMonitor, the live widget of one run, split by concept.

- ``monitor``: the widget and its threads, following and refreshing (start here).
- ``panels``: the header and the store table, as HTML from one ``RunView``.
- ``log``: the event log's entries and lines.
- ``graph_panel``: the graph, drawn off the run's loop.
- ``static``: the picture a saved notebook keeps.
- ``style``: the stylesheet (layout, themes, narrow widths).
- ``kernel_io``: capturing what steps print, the one place that touches ipykernel internals.
"""

from .graph_panel import GRAPH_HEIGHT, GRAPH_INTERVAL
from .log import LOG_BURST
from .monitor import HEARTBEAT, LOG_SIZE, REFRESH_INTERVAL, RunMonitor

__all__ = [
    "GRAPH_HEIGHT",
    "GRAPH_INTERVAL",
    "HEARTBEAT",
    "LOG_BURST",
    "LOG_SIZE",
    "REFRESH_INTERVAL",
    "RunMonitor",
]
