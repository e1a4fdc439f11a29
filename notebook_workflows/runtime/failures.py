"""An attempt of a step failed: the reducer's part that decides what follows.

Its retry policy may try it again after a delay; a ``@catch_error`` handler may take the
failure along the line of events it belongs to (``recover``); otherwise the run fails, with
the invocation kept in flight and its input, so that a resumed run tries it again. Like the
rest of the reducer, no asyncio, no I/O, no clock: time comes in as ``now``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..errors import WorkflowTimeoutError
from ..events import StepFailed, StepFailedEvent
from . import joins, outcome, routing
from .commands import CancelTimer, Command, Publish, ScheduleTimer, WriteCheckpoint
from .state import Invocation, RunState

__all__ = ["failed", "recover", "step_timeout_error"]


def failed(
    state: RunState,
    inv: Invocation,
    error: BaseException,
    now: float,
    out: list[Command],
    retry: bool = True,
) -> None:
    """An attempt of ``inv`` failed: retry it later if its policy says so, else fail the run
    (the invocation stays in flight with its input, so a resumed run tries it again)."""
    spec = state.specs[inv.step]
    seconds = now - inv.started
    delay = None
    policy = spec.retry_policy if retry else None
    if policy is not None:
        delay = ask_policy(policy, now - inv.first_started, inv.attempt, error)
    if spec.timeout is not None:
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
                    delay is not None,
                    seconds,
                    now,
                )
            )
        )
    state.busy[inv.step] -= 1
    state.step_seconds[inv.step] += seconds
    inv.last_error = error
    inv.failed_at = now
    if inv.waiting:  # failed while suspended in wait_for_event (its wait timed out)
        inv.waiting = False
        state.waiting -= 1
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
        recover(state, inv, error, handler, now, out)
        return
    inv.error = f"{type(error).__name__}: {error}"
    state.failed = inv
    state.touch(inv)
    outcome.settle_stepping(state, inv, out)
    outcome.finish(state, "failed", now, out, error=error, failed=inv)


def recover(
    state: RunState, inv: Invocation, error: Exception, handler: str, now: float, out: list[Command]
) -> None:
    """A ``@catch_error`` handler takes the failure: the failed invocation is done with, and a
    ``StepFailedEvent`` goes to the handler, whose output carries the run on. The event's line
    counts one more recovery by ``handler`` (and so does the run's total)."""
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
        elapsed_seconds=max(0.0, now - inv.first_started),
        failed_at=datetime.fromtimestamp(now, timezone.utc),
    )
    routing.route(state, failed, handler, None, joins.scope_of(state, inv.seq), line)
    if state.joins is not None:
        joins.finished(state, inv.seq)
    if state.checkpointed:
        out.append(WriteCheckpoint("step", inv.step))
    outcome.settle_stepping(state, inv, out)
    outcome.advance(state, now, out)


def ask_policy(policy: Any, elapsed: float, attempt: int, error: BaseException) -> float | None:
    try:
        return policy.next(elapsed, attempt, error)
    except Exception as exc:  # a broken policy must not hide the step's error
        note = f"(its retry policy {policy!r} raised {exc!r}, so it was not retried)"
        if hasattr(error, "add_note"):
            error.add_note(note)
        return None


def step_timeout_error(state: RunState, inv: Invocation) -> WorkflowTimeoutError:
    timeout = state.specs[inv.step].timeout or 0
    return WorkflowTimeoutError(
        f"step {inv.step!r} took longer than its timeout of {timeout:g} s "
        f"(run {state.run_id!r}, attempt {inv.attempt})"
    )
