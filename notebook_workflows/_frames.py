"""Tracebacks that show the user's code, not this library's insides.

An error raised to a person's cell by one of the public calls (``workflow.run``, ``resume``,
``handler.step``, ``ctx.store.set``) keeps, of its traceback, only what is not this package:
the person's own frames (a step's code, for a step that failed) and the public call itself.
The frames of the engine in between say nothing the message does not.
"""

from __future__ import annotations

import os
from types import TracebackType

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def users_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from its first frame outside this package on (None if it has none)."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
        tb = tb.tb_next
    return tb
