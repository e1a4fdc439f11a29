"""Commands: what the reducer asks the driver to do, as plain data.

The reducer decides and the driver carries out; a command says exactly what, with nothing left
to decide: start this invocation, schedule this timer, publish this record, write a
checkpoint, finish the run with this outcome. Immutable named tuples, like the transitions.

Two commands are questions rather than orders: ``AskRetryPolicy`` and ``AskCacheKey`` name user
code the reducer needs an answer from (a step's retry policy, a step's ``cache_key``). The
reducer calls no user code; the driver does, at once, and hands the answer back as a
transition (``RetryDecided``, ``InputKeyed``) whose commands take the question's place, so the
order of everything the run does is the one it would have been had the reducer asked itself.
A run whose steps have neither asks nothing: the hot path has no extra command.
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
    """Record the run in its checkpoint store: after ``step`` completed (``reason="step"``,
    ``"replay"`` when a rerun replayed it), or its status changed (``"status"``). A
    ``ctx.once`` record (``"journal"``) comes as the ``Reply`` to ``JournalWritten``: the
    step that waits for it has it written at once."""

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

    ``error`` is what awaiting the run raises: the error that failed it, or for a cancelled
    run the ``WorkflowCancelledError`` the reducer wrote (a ``WorkflowCancelledByUser`` when its
    user asked). ``failed`` names the invocation whose error ended the run, if a step's did."""

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


class AskRetryPolicy(NamedTuple):
    """Ask the retry policy of ``step`` about attempt ``attempt`` of invocation ``inv_id``,
    which raised ``error`` ``elapsed`` seconds after its first attempt started; answer with
    ``RetryDecided``."""

    inv_id: int
    step: str
    attempt: int
    error: BaseException
    elapsed: float


class AskCacheKey(NamedTuple):
    """Compute the input digest of invocation ``inv_id`` by the ``cache_key`` of ``step``
    (``replay.input_key``) from its input ``event``; answer with ``InputKeyed``."""

    inv_id: int
    step: str
    event: Event


class NoteError(NamedTuple):
    """Add ``note`` to ``error`` (``add_note``): what a step's error says about its retry."""

    error: BaseException
    note: str


class SettleRun(NamedTuple):
    """The run's end could not be written (``EndNotSaved``): settle its result as ``status``
    with ``error`` instead of what ``FinishRun`` said."""

    status: str
    error: BaseException


class LogError(NamedTuple):
    """Write ``message`` to the library's log as an error (nobody awaits a word of it)."""

    message: str


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
    | AskRetryPolicy
    | AskCacheKey
    | NoteError
    | SettleRun
    | LogError
)
