"""Commands: what the reducer asks the driver to do, as plain data.

The reducer decides and the driver carries out; a command says exactly what, with nothing left
to decide: start this invocation, schedule this timer, publish this record, write a
checkpoint, finish the run with this outcome. Immutable named tuples, like the transitions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..events import Event
from .state import Invocation, Waiter


class StartInvocation(NamedTuple):
    """Call the step of ``inv`` with its event (its attempt is ``inv.attempt``)."""

    inv: Invocation


class CancelInvocation(NamedTuple):
    """Cancel the task of ``inv`` (a step timeout); it reports back ``InvocationCancelled``.
    A step running on a thread cannot be stopped: the reducer gives up on it instead."""

    inv: Invocation


class ScheduleTimer(NamedTuple):
    """Feed ``TimerFired(key)`` back after ``delay`` seconds (replacing a timer of that key)."""

    key: tuple[Any, ...]
    delay: float


class CancelTimer(NamedTuple):
    key: tuple[Any, ...]


class ResolveWaiter(NamedTuple):
    """Hand ``event`` to the ``wait_for_event`` call suspended on ``waiter``."""

    waiter: Waiter
    event: Event


class Publish(NamedTuple):
    """Give ``item`` to the run's listeners; ``stream=True`` for an event written to the
    stream (kept, so that a late listener still gets it), False for a lifecycle record.
    ``inv`` is the invocation that wrote it, if a step did."""

    item: Any
    stream: bool = False
    inv: Invocation | None = None


class WriteCheckpoint(NamedTuple):
    """Record the run in its checkpoint store: after ``step`` completed (``reason="step"``),
    or its status changed (``"status"``)."""

    reason: str
    step: str | None = None


class ApplyStoreChanges(NamedTuple):
    """Write into the run's store what a step that ran in another process set (``stored``:
    key -> tagged JSON, checked there) and deleted; it comes before that step's checkpoint."""

    stored: dict[str, Any]
    deleted: tuple[str, ...] = ()


class Reply(NamedTuple):
    """The answer to the transition that asked (``CollectRequested``, ``StepRequested``):
    a value, or an error to raise in the asking code."""

    value: Any = None
    error: BaseException | None = None


class Settled(NamedTuple):
    """The invocation a ``step()`` call ran has completed, failed for good or suspended:
    ``produced`` is what it produced during that call."""

    inv: Invocation
    produced: tuple[Event, ...]


class AdvanceSoon(NamedTuple):
    """Feed ``Advanced`` back on the loop's next turn (once, however often it is asked):
    events a running step sent start their steps when that step has returned or suspended,
    so a step's checkpoint never holds what the steps it fed did afterwards."""


class FinishRun(NamedTuple):
    """The run ended with ``status`` (``done``, ``failed`` or ``cancelled``): stop whatever
    still runs, let it clean up, write the last checkpoint, settle the result.

    ``failed`` names the invocation whose error ended the run, if a step's did."""

    status: str
    result: Any = None
    error: BaseException | None = None
    failed: Invocation | None = None


class ReplayStep(NamedTuple):
    """A rerun replays ``inv`` instead of calling its step (``replay.divert``): write the
    recorded store values ``effects.writes`` to the store, then report ``StepReplayed(inv,
    effects)``, so the call's store writes come before the events it emitted, as when it ran.
    ``effects`` is a ``replay.Effects``."""

    inv: Invocation
    effects: Any


Command = (
    StartInvocation
    | CancelInvocation
    | ScheduleTimer
    | CancelTimer
    | ResolveWaiter
    | Publish
    | WriteCheckpoint
    | ApplyStoreChanges
    | Reply
    | Settled
    | AdvanceSoon
    | FinishRun
    | ReplayStep
)
