"""How to go on with a run that stopped: the line that resumes it, as a run's errors say it.

A checkpointed run that failed in a step, or was cancelled, can go on where it stopped. Its
error ends with the line to type in a new cell, ``await Summarize().resume('run-id')``, with
``store=`` when a new instance of the workflow would not find the store by itself (the durable
layer decides that: ``DurableLayer.resume_call``). A SQLite store is named so that the line can
be pasted as it is; for any other store the line says which one it means.

Every such note starts with ``CHECKPOINTED``, so that an error that passes through several runs
(a run awaited inside a step of another) ends with one line only: the outer run's.
"""

from __future__ import annotations

from typing import Any

from ._frames import note_once
from ._ports import durable

CHECKPOINTED = "the run is checkpointed"


def resume_line(workflow: Any, run_id: str, store: Any) -> str:
    """``await Name().resume('run-id'...)`` for ``run_id`` of ``workflow`` kept in ``store``."""
    line = "await " + durable().resume_call(workflow, run_id, store)
    if "store=store" not in line:
        return line
    shown = repr(store)
    kind = type(store)
    if kind.__name__ == "SQLiteStore" and kind.__module__.endswith(".sqlite"):
        # its repr is the call that opens the same file again, relative to this directory
        return line.replace("store=store", f"store={shown}")
    named = f"the {kind.__name__} it ran with" if "<" in shown else shown
    return f"{line} (store: {named})"


def say_how_to_go_on(error: BaseException, line: str, what: str = "") -> None:
    """End ``error`` with a note saying that its run can go on, ``what`` to do first (``"fix
    the step, then "``), and ``line``; the note of an inner run is replaced."""
    note = f"{CHECKPOINTED}: {what}go on where it stopped with\n{line}"
    note_once(error, note, replacing=CHECKPOINTED)
