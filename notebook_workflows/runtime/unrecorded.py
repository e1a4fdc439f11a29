"""``ctx.once`` results whose record could not be written, kept in this process.

A ``ctx.once`` call returns only once its record is in the checkpoint store. When the store
fails right then (restarted, locked, full), the call has been made but its record is lost:
``once`` raises, and the run stops. So that resuming the run from this process does not make
the call a second time, the result is kept here, by run and invocation, and given back to the
invocation of the resumed run that has the same step and input event when it starts (the
driver, before the step runs). A process that dies loses this table: that gap (a crash
between the call and its record) is the one ``ctx.once`` documents.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import SnapshotError
from .replay import input_key
from .state import Invocation

__all__ = [
    "forget_unrecorded",
    "give_unrecorded",
    "keep_unrecorded",
    "once_not_recorded",
    "once_refused",
]

# run id -> (step, digest of its input event) -> once name -> result: an invocation is found
# again by what it was called with, whether the resumed run restores it or makes it anew (a
# step whose completion was not recorded yet runs again and sends the same event)
_KEPT: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
_LOCK = threading.Lock()


def keep_unrecorded(run_id: str, inv: Invocation, key: str, encoded: Any) -> None:
    try:
        identity = (inv.step, input_key(None, inv.event))
    except Exception:  # an input that does not encode is in no record to resume from
        return
    with _LOCK:
        _KEPT.setdefault(run_id, {}).setdefault(identity, {})[key] = encoded


def give_unrecorded(run_id: str, inv: Invocation) -> bool:
    """Give an invocation of a resumed run the ``once`` results kept for it here; whether any
    was given. They stay kept until ``forget_unrecorded``: the record that would hold them
    may fail too."""
    kept_for_run = _KEPT.get(run_id)
    if not kept_for_run:  # the common case: one dict lookup per step started
        return False
    try:
        identity = (inv.step, input_key(None, inv.event))
    except Exception:  # an event that does not encode was never recorded
        return False
    with _LOCK:
        kept = kept_for_run.get(identity)
    if not kept:
        return False
    inv.journal = {**kept, **(inv.journal or {})}
    return True


def forget_unrecorded(run_id: str) -> None:
    """The run has ended with its records whole: nothing kept for it is needed again."""
    with _LOCK:
        _KEPT.pop(run_id, None)


def once_refused(run_id: str, step: str, key: str, why: str) -> SnapshotError:
    return SnapshotError(
        f"ctx.once({key!r}) in step {step!r} of run {run_id!r} was not called: {why}, so its "
        f"result could not be recorded; continue with workflow.resume({run_id!r})"
    )


def once_not_recorded(run_id: str, step: str, key: str, cause: BaseException) -> SnapshotError:
    return SnapshotError(
        f"ctx.once({key!r}) in step {step!r} of run {run_id!r} made its call, but its record "
        f"could not be written: {cause}. The result is kept in this process: resuming the run "
        f"here (workflow.resume({run_id!r})) does not make the call again"
    )
