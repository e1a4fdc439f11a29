"""Where the handler's rich display and the checkpoint tables import their text helpers from.

The pictures live in the notebook layer (``notebook_workflows.notebook.display``); this module
keeps the import path the engine's thin doors use (``handler._repr_mimebundle_``).
"""

from .notebook.display import (
    STATUS_COLOURS,
    duration,
    event_summary,
    handler_html,
    handler_text,
    plural,
    short,
    short_text,
    store_rows,
)

__all__ = [
    "STATUS_COLOURS",
    "duration",
    "event_summary",
    "handler_html",
    "handler_text",
    "plural",
    "short",
    "short_text",
    "store_rows",
]
