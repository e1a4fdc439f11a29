"""Two small helpers for setting widgets: only what changed, and visibility by CSS class."""

from __future__ import annotations

from typing import Any

from .style import HIDDEN


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
