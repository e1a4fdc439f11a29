"""Small helpers for the monitor's widgets: the models every monitor shares, setting only what
changed, and visibility by CSS class."""

from __future__ import annotations

import threading
from typing import Any

from .style import HIDDEN, STYLE

_shared: dict[str, Any] = {}
_lock = threading.Lock()


def _shared_models(W: Any) -> dict[str, Any]:
    """The Layout, style models and stylesheet all monitors use: made once per kernel, and
    again if they were closed (``Widget.close_all()``, say)."""
    with _lock:
        if not _shared or any(getattr(w, "comm", None) is None for w in _shared.values()):
            layout = W.Layout()
            html_style = W.widgets.widget_string.HTMLStyle()
            _shared.update(
                layout=layout,
                html=html_style,
                button=W.ButtonStyle(),
                text=W.widgets.widget_string.TextStyle(),
                stylesheet=W.HTML(
                    STYLE, layout=layout, style=html_style, _dom_classes=("nwm-style",)
                ),
            )
        return _shared


def _set(widget: Any, **traits: Any) -> None:
    """Set the traits that changed, as one message (``hold_sync``); none if nothing did."""
    changed = {k: v for k, v in traits.items() if getattr(widget, k) != v}
    if not changed:
        return
    with widget.hold_sync():
        for key, value in changed.items():
            setattr(widget, key, value)


def _show(widget: Any, visible: bool) -> None:
    hidden = HIDDEN in widget._dom_classes
    if visible and hidden:
        widget.remove_class(HIDDEN)
    elif not visible and not hidden:
        widget.add_class(HIDDEN)
