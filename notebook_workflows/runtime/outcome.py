"""What every transition ends with: start what can run (``advance``), settle the run's one
status field, count the run's time, and finish the run. Shared by the transitions' handlers
in ``reducer.py``; like them, plain functions of the state that append commands, with no I/O
and no clock.

In a rerun, starting goes through ``replay.divert``, which may have to ask a step's
``cache_key`` before it knows whether to replay an invocation: ``advance`` stops there, and
``keyed`` goes on from the same place when the answer comes (``InputKeyed``)."""

from __future__ import annotations

from typing import Any

from ..errors import WorkflowCancelledByUser, WorkflowCancelledError
from ..events import RunStatusChanged, StopEvent
from . import replay, routing
from .commands import (
    CancelTimer,
    Command,
    FinishRun,
    Publish,
    ScheduleTimer,
    Settled,
    StartInvocation,
    WriteCheckpoint,
)
from .state import FINISHED, Invocation, RunState
from .transitions import InputKeyed

RUN_TIMER = ("run",)
_new = tuple.__new__  # makes a command on the hot path without NamedTuple's Python __new__


def start(state: RunState, inv: Invocation, out: list[Command]) -> None:
    # (the driver publishes StepStarted when it actually starts the invocation)
    out.append(StartInvocation(inv))
    if inv.step in state.timed:
        start_timer(state, inv, out)


def start_timer(state: RunState, inv: Invocation, out: list[Command]) -> None:
    out.append(ScheduleTimer(("step", inv.id, inv.attempt), state.timed[inv.step]))


def settle_status(state: RunState, now: float, out: list[Command]) -> None:
    if state.queued or state.ready or state.answered or len(state.in_flight) > state.waiting:
        state.stalled = ""
        if state.status != "running":
            set_status(state, "running", now, out)
    elif state.is_waiting():
        state.stalled = ""
        set_status(state, "waiting", now, out)
    else:
        # Nothing can move until an event comes from outside the steps (a task a step left
        # behind, or handler.ctx.send_event): the run waits for it, as in llama-index-workflows,
        # and says what holds it (the handler's view, the monitor, the timeout's error).
        state.stalled = state.stall_reason()
        if state.status != "running":
            set_status(state, "running", now, out)


def set_status(
    state: RunState, status: str, now: float, out: list[Command], detail: str = ""
) -> None:
    if state.status == status:
        return
    state.status = status
    if state.observed:
        out.append(Publish(RunStatusChanged(state.run_id or "", status, detail, now)))
    if state.checkpointed and not state.finished:
        out.append(WriteCheckpoint("status"))  # a paused run shows as waiting in the store


def clock(state: RunState, now: float, out: list[Command]) -> None:
    """The run's time budget runs while it is running (in a stepwise run: during a step()
    call), and pauses while it waits for a human."""
    counting = state.status == "running" and (not state.stepwise or state.stepping is not None)
    if counting and state.clock_since is None:
        state.clock_since = now
        out.append(ScheduleTimer(RUN_TIMER, max(0.0, state.budget or 0.0)))
    elif not counting and state.clock_since is not None:
        state.budget = (state.budget or 0.0) - (now - state.clock_since)
        state.clock_since = None
        out.append(CancelTimer(RUN_TIMER))


def settle_stepping(state: RunState, inv: Invocation, out: list[Command]) -> None:
    stepping = state.stepping
    if stepping is not None and stepping[0] == inv.id:
        state.stepping = None
        out.append(Settled(inv, tuple(inv.produced[stepping[1] :])))


def finish(
    state: RunState,
    status: str,
    now: float,
    out: list[Command],
    *,
    error: BaseException | None = None,
    failed: Invocation | None = None,
    detail: str = "",
) -> None:
    result: Any = None
    raised = error
    if status == "done":
        stop = state.stop
        assert stop is not None
        result = stop if has_own_fields(type(stop)) else stop.result
        state.clear_pending()
        out.append(Publish(stop, stream=True))
    elif status == "cancelled":
        # whatever was running stays in flight with its input: resuming runs it again
        for inv in state.in_flight.values():
            inv.waiting = False
        state.waiting = 0
        state.answered.clear()
    state.error = error
    state.detail = detail or (f"{type(error).__name__}: {error}" if error is not None else "")
    if status == "cancelled":
        raised = cancelled_run_error(state)
    set_status(state, status, now, out, state.detail)
    stepping = state.stepping
    if stepping is not None:
        stepped = state.in_flight.get(stepping[0])
        state.stepping = None
        if stepped is not None:
            out.append(Settled(stepped, tuple(stepped.produced[stepping[1] :])))
    out.append(FinishRun(status, result, raised, failed))


def cancelled_run_error(state: RunState) -> WorkflowCancelledError:
    """What awaiting a cancelled run raises: why it was cancelled and, if it had stalled, what
    held it; a ``WorkflowCancelledByUser`` when its user asked (``handler.cancel()``, the
    monitor's Cancel), which a notebook shows as one line. (The driver adds the line that
    resumes it: that needs its store.)"""
    detail = state.detail
    message = f"run {state.run_id or ''!r} of {state.workflow_name} was "
    if detail.startswith("cancelled "):  # "cancelled from the run monitor"
        message += detail
    else:
        message += f"cancelled: {detail}" if detail else "cancelled"
    if state.stalled:
        message += f" (it had stalled: {state.stalled})"
    kind = WorkflowCancelledByUser if state.cancelled_by_user else WorkflowCancelledError
    return kind(message)


def has_own_fields(cls: type[StopEvent]) -> bool:
    return bool(set(cls.model_fields) - {"result"})


def advance(state: RunState, now: float, out: list[Command]) -> None:
    """Start what can run (unless stepping), then settle the run's status."""
    if state.status in FINISHED:
        return
    if state.stop is not None:
        finish(state, "done", now, out)
        return
    if state.replay is not None and state.questions and not state.stepwise:
        replay.answer_questions(state, out)  # a rerun answers what the recorded run was told
    if not state.stepwise and (state.queued or state.ready):
        if state.replay is None:
            started = routing.take(state, now)
        elif state.asked:
            started = []  # a divert waits for a cache_key: what comes next waits behind it
        else:  # a rerun: replay what the recorded run did
            diverted = replay.divert(state, routing.take(state, now), out)
            if diverted is None:
                return  # asked a step's cache_key first: ``keyed`` goes on
            started = diverted
        for inv in started:
            out.append(_new(StartInvocation, (inv,)))  # StartInvocation(inv), a bit cheaper
            if inv.step in state.timed:
                start_timer(state, inv, out)
    settle_status(state, now, out)


def keyed(state: RunState, t: InputKeyed, now: float, out: list[Command]) -> None:
    """A step's ``cache_key`` answered: the rerun's divert goes on where it stopped, and what
    it leaves to run starts (an answer nobody waits for changes nothing)."""
    started = replay.keyed(state, t.inv_id, t.key, t.problem, out)
    if started is None or state.status in FINISHED:
        return
    for inv in started:
        out.append(StartInvocation(inv))
        if inv.step in state.timed:
            start_timer(state, inv, out)
    settle_status(state, now, out)
