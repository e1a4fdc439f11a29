"""An attempt of a step failed: the reducer's part that decides what follows.

Its retry policy may try it again after a delay; a ``@catch_error`` handler may take the
failure along the line of events it belongs to (``recover``); otherwise the run fails, with
the invocation kept in flight and its input, so that a resumed run tries it again. Like the
rest of the reducer, no asyncio, no I/O, no clock: time comes in as ``now``.

A retry policy is user code, which the reducer does not call: a step that has one is asked
(``AskRetryPolicy``) and the failure is decided when the answer comes back (``RetryDecided``),
holding what it needs meanwhile (``PendingFailure``). The driver answers at once, so nothing
happens in between; a step without a policy is decided at once, with no question at all.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..errors import WorkflowCancelledError, WorkflowTimeoutError
from ..events import StepFailed, StepFailedEvent
from . import joins, outcome, routing
from .commands import (
    AskRetryPolicy,
    CancelTimer,
    Command,
    NoteError,
    Publish,
    ScheduleTimer,
    WriteCheckpoint,
)
from .state import Invocation, PendingFailure, RunState
from .transitions import RetryDecided

__all__ = ["cancelled_error", "failed", "recover", "retry_decided", "step_timeout_error"]


def failed(
    state: RunState,
    inv: Invocation,
    error: BaseException,
    now: float,
    out: list[Command],
    retry: bool = True,
) -> None:
    """An attempt of ``inv`` failed: ask its retry policy, if it has one and ``retry``, else
    decide now that it is not tried again."""
    policy = state.specs[inv.step].retry_policy if retry else None
    if policy is None:
        _decide(state, inv, error, now, None, now, out)
        return
    state.asked[inv.id] = PendingFailure(error, now)
    out.append(AskRetryPolicy(inv.id, inv.step, inv.attempt, error, now - inv.first_started))


def retry_decided(state: RunState, t: RetryDecided, now: float, out: list[Command]) -> None:
    """The retry policy answered: decide the failure it was asked about. An answer nobody
    waits for (the run ended meanwhile, the attempt is not the one asked about) is dropped."""
    pending = state.asked.pop(t.inv_id, None)
    inv = state.in_flight.get(t.inv_id)
    if not isinstance(pending, PendingFailure) or inv is None or inv.attempt != t.attempt:
        return
    if state.finished:
        return
    if t.note:  # the policy raised: the step's error says so, before anyone sees it
        out.append(NoteError(pending.error, t.note))
    _decide(state, inv, pending.error, pending.at, t.delay, now, out)


def _decide(
    state: RunState,
    inv: Invocation,
    error: BaseException,
    at: float,
    delay: float | None,
    now: float,
    out: list[Command],
) -> None:
    """The attempt of ``inv`` that failed with ``error`` at ``at`` is tried again after
    ``delay`` seconds, or (None) recovered by a ``@catch_error`` handler, or fails the run
    (the invocation stays in flight with its input, so a resumed run tries it again)."""
    _count_failure(state, inv, error, at, delay is not None, out)
    if delay is not None:
        inv.attempt += 1
        inv.wait_calls = 0
        inv.produced = []
        inv.streamed = None
        inv.timed_out = False
        state.retrying.add(inv.id)
        state.touch(inv)
        out.append(ScheduleTimer(("retry", inv.id), max(0.0, delay)))
        outcome.settle_status(state, now, out)
        return
    handler = state.catchers.get(inv.step)
    if (
        handler is not None
        and isinstance(error, Exception)
        and (state.lineage.get(inv.seq) or {}).get(handler, 0) < state.max_recoveries[handler]
    ):
        recover(state, inv, error, handler, at, now, out)
        return
    inv.error = f"{type(error).__name__}: {error}"
    state.failed = inv
    state.touch(inv)
    outcome.settle_stepping(state, inv, out)
    outcome.finish(state, "failed", now, out, error=error, failed=inv)


def _count_failure(
    state: RunState,
    inv: Invocation,
    error: BaseException,
    at: float,
    retried: bool,
    out: list[Command],
) -> None:
    """What every failed attempt does, retried or not: its step timer stops, listeners hear
    of it, its worker slot and time are given back, and a wait it was suspended in ends."""
    seconds = at - inv.started
    if state.specs[inv.step].timeout is not None:
        out.append(CancelTimer(("step", inv.id, inv.attempt)))
    if state.observed:
        out.append(
            Publish(
                StepFailed(
                    state.run_id or "",
                    inv.step,
                    inv.event,
                    error,
                    inv.attempt,
                    retried,
                    seconds,
                    at,
                )
            )
        )
    state.busy[inv.step] -= 1
    state.step_seconds[inv.step] += seconds
    inv.last_error = error
    inv.failed_at = at
    if inv.waiting:  # failed while suspended in wait_for_event (its wait timed out)
        inv.waiting = False
        state.waiting -= 1


def recover(
    state: RunState,
    inv: Invocation,
    error: Exception,
    handler: str,
    at: float,
    now: float,
    out: list[Command],
) -> None:
    """A ``@catch_error`` handler takes the failure (of ``inv`` at ``at``): the failed
    invocation is done with, and a ``StepFailedEvent`` goes to the handler, whose output
    carries the run on (from ``now``). The event's line counts one more
    recovery by ``handler`` (and so does the run's total)."""
    state.recoveries[handler] = state.recoveries.get(handler, 0) + 1
    was = state.lineage.pop(inv.seq, None)
    line = dict(was or {})
    line[handler] = line.get(handler, 0) + 1
    del state.in_flight[inv.id]
    state.touch(inv)
    failed = StepFailedEvent(
        step_name=inv.step,
        input_event=inv.event,
        exception=error,
        attempts=inv.attempt,
        elapsed_seconds=max(0.0, at - inv.first_started),
        failed_at=datetime.fromtimestamp(at, timezone.utc),
    )
    routing.route(state, failed, handler, None, joins.scope_of(state, inv.seq), line)
    if state.joins is not None:
        joins.finished(state, inv.seq)
    if state.checkpointed:
        out.append(WriteCheckpoint("step", inv.step))
    outcome.settle_stepping(state, inv, out)
    outcome.advance(state, now, out)


def step_timeout_error(state: RunState, inv: Invocation) -> WorkflowTimeoutError:
    timeout = state.specs[inv.step].timeout or 0
    return WorkflowTimeoutError(
        f"step {inv.step!r} took longer than its timeout of {timeout:g} s "
        f"(run {state.run_id!r}, attempt {inv.attempt})"
    )


def cancelled_error(like: BaseException | None, message: str) -> BaseException:
    """A new ``CancelledError`` saying ``message``, of asyncio's class as found on ``like``
    (the one a step raised or was cancelled with): the reducer does not import asyncio.
    Without one to go by (a transition made by hand), a ``WorkflowCancelledError``."""
    for cls in type(like).__mro__ if like is not None else ():
        if cls.__name__ == "CancelledError" and cls.__module__ == "asyncio.exceptions":
            made: BaseException = cls(message)
            return made
    return WorkflowCancelledError(message)
