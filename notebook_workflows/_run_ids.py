"""What a run id given to ``run(run_id=...)`` may be, checked once for every store, and the
ids made up for runs that were given none.

A run id is typed back into ``resume``, shown in ``runs()`` lists and error messages, and
kept as text by every store: an empty one cannot be told from "none given" (it used to be
replaced by a made-up id without a word), and a control character (NUL, a newline, an escape)
is unreadable where it is shown and refused or cut short by some stores (PostgreSQL's text
has no NUL) but not by others. So ``run`` refuses them before anything starts, the same way
with any store or none, rather than letting each store fail in its own words halfway.
"""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Any

__all__ = ["check_run_id", "new_run_id"]

# control characters, and lone surrogates, which no store can write as UTF-8 text
_UNREADABLE = ("Cc", "Cs")


def check_run_id(run_id: Any) -> None:
    """Refuse a ``run_id`` that is not None and not a non-empty str of readable characters:
    ``TypeError`` for another type, ``ValueError`` for an empty one or one holding a control
    character, each naming the id with ``repr``."""
    if run_id is None:
        return
    if not isinstance(run_id, str):
        raise TypeError(f"run_id is a str, got {type(run_id).__name__}: {run_id!r}")
    if not run_id:
        raise ValueError(
            "run_id='' is empty: give the run a name, or leave run_id out and one is made up"
        )
    for position, char in enumerate(run_id):
        category = unicodedata.category(char)
        if category in _UNREADABLE:
            what = "a control character" if category == "Cc" else "a lone surrogate"
            raise ValueError(
                f"run_id {run_id!r} holds {what}, {char!r}, at position {position}: a run id "
                f"is typed back into resume() and shown in lists, so it is made of printable "
                f"characters only"
            )


def new_run_id(workflow_name: str) -> str:
    """Short, readable and unique enough to type back into ``resume``."""
    slug = re.sub(r"(?<!^)(?=[A-Z])", "-", workflow_name).lower().strip("-_") or "run"
    return f"{slug[:24]}-{os.urandom(4).hex()}"
