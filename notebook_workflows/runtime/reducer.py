"""The reducer: ``reduce(state, transition, now) -> commands``, every decision of a run.

Routing, ``collect_events``, waiters and questions, retries, step and run timeouts, the stop,
the stall, stepping ("take exactly one"), the run's one status field: all of it is decided
here, from a ``RunState`` and one ``Transition``, and comes out as ``Command``s for the driver
to carry out. The room has six parts: this module (one handler per transition), ``routing``
(where an event goes, which invocation runs next), ``joins`` (steps that run once several
events have arrived, fan-out streams, the lines of ``@catch_error``), ``outcome`` (advancing,
the status, the end), ``failures`` (retry, recover or fail) and ``stepping`` (``step()`` and
leaving it). There is no asyncio, no I/O and no clock in any of them: time comes in as ``now``
(seconds since the epoch), so a test can fold a list of transitions over a state and compare
the commands with the ones expected, without an event loop. ``now`` is required: there is no
clock to fall back on.

The reducer mutates the state it is given (see ``state.py`` for why) and is deterministic:
the same state and transitions give the same commands. It calls no user code. What it needs
from user code, a step's retry policy deciding whether to try again and a step's
``cache_key`` keying its input for a rerun, it asks for with a command (``AskRetryPolicy``,
``AskCacheKey``) and folds the answer when it comes back as a transition (``RetryDecided``,
``InputKeyed``); see ``failures`` and ``replay``. The driver answers at once, so a run goes
exactly as if the reducer had asked itself, and a log of transitions holds the answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import WorkflowRuntimeError, WorkflowTimeoutError
from ..events import (
    Event,
    StepFinished,
)
from . import failures, joins, outcome, replay, routing, stepping
from .commands import (
    AdvanceSoon,
    ApplyStoreChanges,
    CancelInvocation,
    CancelTimer,
    Command,
    LogError,
    Publish,
    Reply,
    ResolveWaiter,
    SettleRun,
    WriteCheckpoint,
)
from .state import FINISHED, Invocation, RunState, Waiter
from .transitions import (
    Advanced,
    CancelRequested,
    CollectRequested,
    EndNotSaved,
    EventSent,
    InputKeyed,
    InvocationCancelled,
    InvocationFailed,
    InvocationReturned,
    JournalWritten,
    ListenersChanged,
    RemoteStepReturned,
    RetryDecided,
    RunAborted,
    RunStarted,
    SteppingReleased,
    StepReplayed,
    StepRequested,
    StreamWritten,
    TimerFired,
    Transition,
    WaitEnded,
    WaitStarted,
)

__all__ = ["reduce"]

_new = tuple.__new__  # makes a command on the hot path without NamedTuple's Python __new__
_ADVANCE_SOON = AdvanceSoon()
_REPLY = Reply()


def reduce(state: RunState, transition: Transition, now: float) -> list[Command]:
    """Fold ``transition``, which happened at ``now`` (seconds since the epoch), into
    ``state``; return what the driver must do, in order."""
    out: list[Command] = []
    _HANDLERS[transition.__class__](state, transition, now, out)
    if state.timeout is not None:
        outcome.clock(state, now, out)
    return out


# -- starting and advancing ---------------------------------------------------------------------


def _run_started(state: RunState, t: RunStarted, now: float, out: list[Command]) -> None:
    if t.continuing:
        routing.requeue_in_flight(state)
        state.error = None
        state.detail = ""
    state.status = "running"
    state.budget = state.timeout
    state.clock_since = None
    for question in state.questions:
        out.append(Publish(question, stream=True))  # a restored run asks its questions again
    outcome.advance(state, now, out)


# -- what steps report --------------------------------------------------------------------------


def _is_late(state: RunState, inv: Invocation, attempt: int) -> bool:
    """A report about an attempt the run no longer waits for (it ended, the attempt timed out
    and another runs, or the invocation already failed for good)."""
    return (
        inv.attempt != attempt
        or state.status in FINISHED
        or state.in_flight.get(inv.id) is not inv
        or state.failed is inv
        or inv.id in state.retrying
        or inv.id in state.asked
    )


def _returned(state: RunState, t: InvocationReturned, now: float, out: list[Command]) -> None:
    inv = t.inv
    if _is_late(state, inv, t.attempt):
        return
    value = t.value
    if value is None:
        values: Any = ()
    elif value.__class__ is list:  # a fan-out: each event routed as if returned alone
        values = value
    elif value.__class__ in state.specs[inv.step].produces:  # the quick check first
        values = (value,)
    else:
        values = (value,)
        problem = routing.check_returned(state, inv, value)
        if problem is not None:
            failures.failed(state, inv, problem, now, out, retry=False)
            return
    if values.__class__ is list:
        for one in values:
            problem = routing.check_returned(state, inv, one)
            if problem is not None:
                failures.failed(state, inv, problem, now, out, retry=False)
                return
    if state.joins is not None or state.lineage:
        if not _route_tagged(state, inv, values, now, out):
            return
    else:
        for one in values:
            if not _deliver(state, inv, one, None, now, out):
                return
    _complete(state, inv, now, out)
    outcome.advance(state, now, out)


def _deliver(
    state: RunState,
    inv: Invocation,
    event: Event,
    target: str | None,
    now: float,
    out: list[Command],
    scope: tuple[int, ...] = (),
    line: dict[str, int] | None = None,
) -> bool:
    """``event``, produced by ``inv``, goes where it is accepted (``target``: one step only):
    to a waiter it answers, else to the queue; a question is also published to the stream.
    False when routing failed the invocation (no step accepts the event)."""
    inv.produced.append(event)
    try:
        woken = routing.route(state, event, target, inv.step, scope, line)
    except WorkflowRuntimeError as exc:
        failures.failed(state, inv, exc, now, out, retry=False)
        return False
    for waiter in woken:
        _resolve(state, waiter, event, out)
    questions = state.questions
    if questions and questions[-1] is event:  # it was an InputRequiredEvent
        out.append(Publish(event, stream=True))
    return True


def _route_tagged(
    state: RunState, inv: Invocation, values: Any, now: float, out: list[Command]
) -> bool:
    """Route what ``inv`` returned in a run with joins or counted recoveries: its events go
    on in its fan-out streams (a list return opens one) and along its line of events, and its
    own work item leaves its stream. False when routing failed the invocation."""
    line = state.lineage.pop(inv.seq, None)
    scope: tuple[int, ...] = ()
    opened: tuple[int, ...] = ()
    if state.joins is not None:
        if values.__class__ is list and state.specs[inv.step].fans_out:
            scope = opened = joins.fan_out(state, inv.step, inv.seq)
        else:
            scope = joins.scope_of(state, inv.seq)
    for one in values:
        if not _deliver(state, inv, one, None, now, out, scope, line):
            return False
    if state.joins is not None:
        joins.finished(state, inv.seq, opened)
    return True


def _remote_returned(
    state: RunState, t: RemoteStepReturned, now: float, out: list[Command]
) -> None:
    """A step that ran in another process returned: what it did there (store writes, events
    sent and written to the stream, ``ctx.once`` records) and its return value are applied as
    one change, so the checkpoint after it holds all of it, and a late or given-up attempt
    changes nothing."""
    inv = t.inv
    if _is_late(state, inv, t.attempt):
        return
    inv.where = t.where
    if t.journal:
        inv.journal = {**(inv.journal or {}), **t.journal}
        state.touch(inv)
    first = len(out)
    for kind, event, target in t.effects:
        if kind == "stream":
            if routing.kind_of(state, type(event)) is routing.QUESTION and not any(
                q is event for q in state.questions
            ):
                state.questions.append(event)
            out.append(Publish(event, stream=True, inv=inv))
            continue
        sent: list[Command] = []
        _event_sent(state, EventSent(event, target, inv), now, sent)
        for command in sent:
            if command.__class__ is Reply:
                if command.error is not None:  # sent to a step that does not exist, say
                    failures.failed(state, inv, command.error, now, out, retry=False)
                    return
            elif command.__class__ is not AdvanceSoon:  # advancing comes after the return
                out.append(command)
    if t.stored or t.deleted:
        out.insert(first, ApplyStoreChanges(t.stored, t.deleted))
        writes = inv.writes if inv.writes is not None else {}
        writes.update(t.stored)  # what a rerun replays for it
        writes.update(dict.fromkeys(t.deleted))
        inv.writes = writes
    _returned(state, _new(InvocationReturned, (inv, t.attempt, t.value)), now, out)


def _complete(state: RunState, inv: Invocation, now: float, out: list[Command]) -> None:
    seconds = now - inv.started
    step = inv.step
    del state.in_flight[inv.id]
    changes = state.changes
    if changes is not None:
        changes.invocations.add(inv.id)
        changes.completed.append(inv)  # what it did is recorded, so a rerun can replay it
    state.busy[step] -= 1
    state.steps_done += 1
    state.step_runs[step] += 1
    state.step_seconds[step] += seconds
    state.last = inv
    if step in state.timed:
        out.append(CancelTimer(("step", inv.id, inv.attempt)))
    if state.observed:
        out.append(
            Publish(
                StepFinished(
                    state.run_id or "",
                    inv.step,
                    inv.event,
                    tuple(inv.produced),
                    seconds,
                    now,
                    inv.where,
                )
            )
        )
    if state.checkpointed:
        out.append(WriteCheckpoint("replay" if inv.replayed else "step", step))
    if state.stepping is not None:
        outcome.settle_stepping(state, inv, out)


def _step_replayed(state: RunState, t: StepReplayed, now: float, out: list[Command]) -> None:
    """A rerun replays ``inv``: its recorded store writes are in the store (``ReplayStep``);
    now its streamed and emitted events, in one transition, as if the step had returned."""
    inv, effects = t.inv, t.effects
    if state.finished or state.in_flight.get(inv.id) is not inv:
        return
    inv.replayed = True
    inv.writes = effects.writes
    if effects.stream:
        inv.streamed = list(effects.stream)
        for event in effects.stream:
            asks = routing.kind_of(state, type(event)) is routing.QUESTION
            if asks and not any(q is event for q in state.questions):
                state.questions.append(event)
            out.append(Publish(event, stream=True, inv=inv))
    for event, target in effects.events:
        if target is not None:
            if inv.targets is None:
                inv.targets = {}
            inv.targets[id(event)] = target
        if not _deliver(state, inv, event, target, now, out):
            return
    state.step_replays[inv.step] += 1
    _complete(state, inv, now, out)
    outcome.advance(state, now, out)


def _failed_report(state: RunState, t: InvocationFailed, now: float, out: list[Command]) -> None:
    if _is_late(state, t.inv, t.attempt):
        return
    error = t.error
    if not isinstance(error, Exception):
        # The step raised CancelledError itself (nobody cancelled it; the only error the driver
        # reports that is not an Exception): that step failed, the same on every Python, and
        # its retry policy decides as for any error.
        error = failures.cancelled_error(
            error,
            f"step {t.inv.step!r} raised CancelledError" + (f": {error}" if str(error) else ""),
        )
    failures.failed(state, t.inv, error, now, out)


def _cancelled(state: RunState, t: InvocationCancelled, now: float, out: list[Command]) -> None:
    inv = t.inv
    if _is_late(state, inv, t.attempt):
        return
    if inv.timed_out:
        failures.failed(state, inv, failures.step_timeout_error(state, inv), now, out)
    else:
        error = failures.cancelled_error(t.error, f"step {inv.step!r} was cancelled")
        failures.failed(state, inv, error, now, out)


# -- events from steps and from outside ---------------------------------------------------------


def _event_sent(state: RunState, t: EventSent, now: float, out: list[Command]) -> None:
    if state.finished:
        out.append(
            Reply(
                error=WorkflowRuntimeError(
                    f"run {state.run_id!r} has {state.status}; event not sent"
                )
            )
        )
        return
    inv = t.inv
    origin = None
    line = None
    if inv is not None and state.in_flight.get(inv.id) is inv:
        origin = inv.step
        inv.produced.append(t.event)
        if state.lineage:  # an event a step sends goes on along the step's line
            line = state.lineage.get(inv.seq)
        if t.target is not None and state.changes is not None:  # recorded for a rerun
            if inv.targets is None:
                inv.targets = {}
            inv.targets[id(t.event)] = t.target
    if origin is None and state.changes is not None:  # an answer is recorded for a rerun
        replay.note_answer(state, t.event, t.target)
    try:
        woken = routing.route(state, t.event, t.target, origin, (), line)
    except WorkflowRuntimeError as exc:
        out.append(Reply(error=exc))
        return
    for waiter in woken:
        _resolve(state, waiter, t.event, out)
    questions = state.questions
    if questions and questions[-1] is t.event:  # it was an InputRequiredEvent
        out.append(Publish(t.event, stream=True))
    out.append(_REPLY)
    if origin is None:  # from outside the run: start what it made runnable now
        outcome.advance(state, now, out)
    elif not state.stepwise and (state.queued or state.ready):
        out.append(_ADVANCE_SOON)  # when the sending step has returned or suspended


def _stream_written(state: RunState, t: StreamWritten, now: float, out: list[Command]) -> None:
    event = t.event
    asks = routing.kind_of(state, type(event)) is routing.QUESTION and not state.finished
    if asks and not any(q is event for q in state.questions):
        state.questions.append(event)  # the run now waits for its answer
    inv = t.inv
    if inv is not None and state.changes is not None:  # recorded for a rerun
        if inv.streamed is None:
            inv.streamed = []
        inv.streamed.append(event)
    out.append(Publish(event, stream=True, inv=inv))
    outcome.advance(state, now, out)


def _collect(state: RunState, t: CollectRequested, now: float, out: list[Command]) -> None:
    inv = t.inv
    inv.collects = True  # a rerun cannot replay it: the buffer it fed would miss events
    got = routing.collect(state, inv, t.event, t.expected, t.buffer or inv.step)
    out.append(_new(Reply, (got, None)))  # Reply(got)


def _wait_started(state: RunState, t: WaitStarted, now: float, out: list[Command]) -> None:
    inv, waiter = t.inv, t.waiter
    if state.status in FINISHED:
        return  # a step late to wait, in a run that ended: its task is cancelled, not answered
    routing.add_waiter(state, inv, waiter)
    if waiter.question is not None:
        out.append(Publish(waiter.question, stream=True))
    if state.unclaimed:
        answer = routing.claim(state, waiter)
        if answer is not None:
            _resolve(state, waiter, answer, out)
    outcome.settle_stepping(state, inv, out)
    outcome.advance(state, now, out)


def _wait_ended(state: RunState, t: WaitEnded, now: float, out: list[Command]) -> None:
    inv, waiter = t.inv, t.waiter
    if t.event is not None:
        if inv.waits is None:
            inv.waits = {}
        inv.waits[waiter.index] = t.event
        state.touch(inv)
    routing.drop_waiter(state, inv, waiter)
    outcome.advance(state, now, out)


def _journal(state: RunState, t: JournalWritten, now: float, out: list[Command]) -> None:
    """``ctx.once`` recorded a result: keep it with the invocation, and answer the step with
    the checkpoint it waits for (none for a run with no store, or an invocation given up)."""
    inv = t.inv
    if inv.journal is None:
        inv.journal = {}
    inv.journal[t.key] = t.encoded
    state.touch(inv)
    if state.checkpointed and state.in_flight.get(inv.id) is inv:
        # The record must be in the store before the step goes on, so its checkpoint is the
        # answer to the step that asked, which has it written at once, ahead of the queue
        # (what is queued may wait behind a write in progress; the step waits only for its own).
        out.append(_new(Reply, (WriteCheckpoint("journal", inv.step), None)))


def _resolve(state: RunState, waiter: Waiter, event: Event, out: list[Command]) -> None:
    """An event answered ``waiter``: its step goes on now, or at the next ``step()`` call."""
    inv = state.in_flight.get(waiter.invocation)
    if state.stepwise:
        state.answered.append((waiter, event))
        return
    if inv is not None and inv.waiting:
        inv.waiting = False
        state.waiting -= 1
    out.append(ResolveWaiter(waiter, event))


# -- timers -------------------------------------------------------------------------------------


def _timer(state: RunState, t: TimerFired, now: float, out: list[Command]) -> None:
    if state.finished:
        return
    kind = t.key[0]
    if kind == "retry":
        inv = state.in_flight.get(t.key[1])
        if inv is None or inv.id not in state.retrying:
            return
        state.retrying.discard(inv.id)
        stepping = state.stepping
        if state.stepwise and stepping is not None and stepping[0] == inv.id:
            # the step() call that ran it waits for this retry: start it now
            state.busy[inv.step] += 1
            inv.started = now
            outcome.start(state, inv, out)
        else:
            state.ready.append(inv)
        outcome.advance(state, now, out)
    elif kind == "step":
        inv = state.in_flight.get(t.key[1])
        if inv is None or inv.attempt != t.key[2] or state.failed is inv or inv.id in state.asked:
            return
        inv.timed_out = True
        if state.specs[inv.step].is_async:
            out.append(CancelInvocation(inv))  # it reports back InvocationCancelled
        else:  # a thread cannot be stopped: give up on it and ignore its late result
            failures.failed(state, inv, failures.step_timeout_error(state, inv), now, out)
    elif kind == "run":
        running = sorted({inv.step for inv in state.in_flight.values()})
        state.timed_out_run = tuple(running) or ("(none)",)
        state.clock_since = None
        outcome.finish(
            state,
            "failed",
            now,
            out,
            error=WorkflowTimeoutError(
                f"run {state.run_id!r} of {state.workflow_name} took longer than its timeout "
                f"of {state.timeout:g} s (time spent waiting for a human is not counted)"
                + (f"; still running: {', '.join(running)}" if running else "")
                + (f"; it had stalled: {state.stalled}" if state.stalled else "")
            ),
        )


# -- ending -------------------------------------------------------------------------------------


def _cancel(state: RunState, t: CancelRequested, now: float, out: list[Command]) -> None:
    if not state.finished:
        state.cancelled_by_user = t.by_user
        outcome.finish(state, "cancelled", now, out, detail=t.detail)


def _abort(state: RunState, t: RunAborted, now: float, out: list[Command]) -> None:
    if not state.finished:
        outcome.finish(state, "failed", now, out, error=t.error)


def _advanced(state: RunState, t: Advanced, now: float, out: list[Command]) -> None:
    outcome.advance(state, now, out)


def _end_not_saved(state: RunState, t: EndNotSaved, now: float, out: list[Command]) -> None:
    """The record of the run's end could not be written. A run that was done has failed: its
    store would not say it is done, so listeners hear it failed and awaiting it raises the
    store's error. A failed run says so already (its store failed, most likely alike); the
    end of a cancelled one is only logged (awaiting it raises its cancellation)."""
    if state.status == "done":
        state.status = "running"  # so that the change to failed is announced as one
        state.error = t.error
        state.detail = f"{type(t.error).__name__}: {t.error}"
        outcome.set_status(state, "failed", now, out, state.detail)
        out.append(SettleRun("failed", t.error))
    elif state.status != "failed":
        out.append(LogError(f"could not save the end of run {state.run_id or ''}: {t.error}"))


def _listeners(state: RunState, t: ListenersChanged, now: float, out: list[Command]) -> None:
    state.observed = t.observed


_HANDLERS: dict[type, Callable[[RunState, Any, float, list[Command]], None]] = {
    RunStarted: _run_started,
    InvocationReturned: _returned,
    RemoteStepReturned: _remote_returned,
    InvocationFailed: _failed_report,
    InvocationCancelled: _cancelled,
    EventSent: _event_sent,
    StreamWritten: _stream_written,
    CollectRequested: _collect,
    WaitStarted: _wait_started,
    WaitEnded: _wait_ended,
    JournalWritten: _journal,
    TimerFired: _timer,
    StepRequested: stepping.step_requested,
    SteppingReleased: stepping.stepping_released,
    CancelRequested: _cancel,
    RunAborted: _abort,
    ListenersChanged: _listeners,
    Advanced: _advanced,
    EndNotSaved: _end_not_saved,
    StepReplayed: _step_replayed,
    RetryDecided: failures.retry_decided,
    InputKeyed: outcome.keyed,
}
