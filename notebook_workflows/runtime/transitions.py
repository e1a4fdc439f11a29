"""Transitions: what can happen to a run, as plain data the reducer folds into its state.

Each is an immutable named tuple (made once per step run on the hot path, where a tuple is the
cheapest immutable record Python has). The driver makes them from what asyncio tells it (a
step returned, raised, a timer fired) and from what user code asks (``ctx.send_event``, a
``step()`` call, ``cancel()``); the reducer (``reducer.reduce``) is the only reader.

Invocations travel as the ``Invocation`` objects of the state, with the attempt they were
started for: a late report of an attempt that was already given up (a timed-out thread) is
recognised by its attempt number and ignored. The answers to the reducer's questions to user
code (``RetryDecided``, ``InputKeyed``) name their invocation by id instead, and hold only
plain values: they are what user code said, written down, so a fold of recorded transitions
gives the same run without calling that code again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ..events import Event
from .state import Invocation, Waiter


class RunStarted(NamedTuple):
    """The driver begins the run: a fresh one (its start event is queued already) or one that
    continues a restored, failed or cancelled run."""

    continuing: bool = False


class InvocationReturned(NamedTuple):
    """A step invocation returned ``value`` (an event, or None)."""

    inv: Invocation
    attempt: int
    value: Any


class RemoteStepReturned(NamedTuple):
    """A sync step that ran in another process (a process pool, a Dask cluster) returned
    ``value``. What it did to the run there comes back with it, to be applied together:
    ``stored`` (store key -> tagged JSON) and ``deleted`` store keys, ``effects`` (events
    sent, ``("send", event, target)``, and written to the stream, ``("stream", event, None)``,
    in the order the step made them), ``journal`` (its new ``ctx.once`` records) and
    ``where`` it ran (a Dask worker's address, or host and process id)."""

    inv: Invocation
    attempt: int
    value: Any
    stored: dict[str, Any]
    deleted: tuple[str, ...]
    effects: tuple[tuple[str, Event, str | None], ...]
    journal: dict[str, Any]
    where: str


class InvocationFailed(NamedTuple):
    """A step invocation raised ``error`` (also ``CancelledError`` the step raised itself)."""

    inv: Invocation
    attempt: int
    error: BaseException


class InvocationCancelled(NamedTuple):
    """A step invocation's task ended because the driver cancelled it (a step timeout, or the
    run ending). ``error`` is the ``CancelledError`` it ended with: the reducer, which does not
    import asyncio, makes its own of that class when it has to say the step was cancelled."""

    inv: Invocation
    attempt: int
    error: BaseException | None = None


class EventSent(NamedTuple):
    """``ctx.send_event``: from a step invocation (``inv``) or from outside the run."""

    event: Event
    target: str | None = None
    inv: Invocation | None = None


class StreamWritten(NamedTuple):
    """``ctx.write_event_to_stream``, from invocation ``inv`` (None outside steps); an
    ``InputRequiredEvent`` also makes the run wait."""

    event: Event
    inv: Invocation | None = None


class CollectRequested(NamedTuple):
    """``ctx.collect_events(event, expected)`` in invocation ``inv``; answered with a
    ``Reply`` holding the collected events or None."""

    inv: Invocation
    event: Event
    expected: Sequence[type[Event]]
    buffer: str | None = None


class WaitStarted(NamedTuple):
    """``ctx.wait_for_event`` suspended invocation ``inv`` on ``waiter``."""

    inv: Invocation
    waiter: Waiter


class WaitEnded(NamedTuple):
    """The wait of ``waiter`` ended: with its ``event``, or None (it timed out or was
    cancelled)."""

    inv: Invocation
    waiter: Waiter
    event: Event | None


class JournalWritten(NamedTuple):
    """``ctx.once(key, ...)`` in invocation ``inv`` called its function, which returned
    ``encoded`` (tagged JSON): keep it, and write it down before the step goes on."""

    inv: Invocation
    key: str
    encoded: Any


class TimerFired(NamedTuple):
    """A timer the reducer scheduled (``ScheduleTimer``) fired: ``("retry", inv id)``,
    ``("step", inv id, attempt)`` or ``("run",)``."""

    key: tuple[Any, ...]


class StepRequested(NamedTuple):
    """``await handler.step()``: run exactly one invocation (or hand one held answer over)."""


class SteppingReleased(NamedTuple):
    """``await handler`` on a stepwise run: run the rest freely."""


class CancelRequested(NamedTuple):
    """Stop the run: ``handler.cancel()`` (``by_user``), an interrupted cell, a cancelled
    awaiting task."""

    detail: str = "cancelled"
    by_user: bool = False


class RunAborted(NamedTuple):
    """Fail the run from outside the steps (a checkpoint that could not be written, a question
    nobody can answer)."""

    error: BaseException


class Advanced(NamedTuple):
    """The loop came round (after ``AdvanceSoon``): start what events sent by a running step
    made runnable."""


class EndNotSaved(NamedTuple):
    """The record of the run's end could not be written: a run that was done has failed
    (its store does not say so)."""

    error: BaseException


class ListenersChanged(NamedTuple):
    """Somebody started (or stopped) listening: lifecycle records are made only when wanted."""

    observed: bool


class StepReplayed(NamedTuple):
    """The driver wrote the store values of a replayed call (``ReplayStep``): apply the events
    it emitted and streamed (``effects``, a ``replay.Effects``) and complete ``inv`` as
    replayed, in this one transition."""

    inv: Invocation
    effects: Any


class RetryDecided(NamedTuple):
    """The answer to ``AskRetryPolicy``: the retry policy of invocation ``inv_id``'s step says
    to try it again after ``delay`` seconds, or not (None). ``note``, when the policy itself
    raised: the line that goes on the step's error to say so (then ``delay`` is None)."""

    inv_id: int
    attempt: int
    delay: float | None
    note: str = ""


class InputKeyed(NamedTuple):
    """The answer to ``AskCacheKey``: the digest of invocation ``inv_id``'s input by its step's
    ``cache_key`` (``replay.input_key``), or None with ``problem``, what the key function (or
    encoding what it returned) raised, as ``"TypeName: message"``."""

    inv_id: int
    key: str | None
    problem: str = ""


Transition = (
    RunStarted
    | InvocationReturned
    | RemoteStepReturned
    | InvocationFailed
    | InvocationCancelled
    | EventSent
    | StreamWritten
    | CollectRequested
    | WaitStarted
    | WaitEnded
    | JournalWritten
    | TimerFired
    | StepRequested
    | SteppingReleased
    | CancelRequested
    | RunAborted
    | Advanced
    | EndNotSaved
    | ListenersChanged
    | StepReplayed
    | RetryDecided
    | InputKeyed
)
