"""Stepping: ``await handler.step()`` runs exactly one invocation, and ``await handler`` on a
stepping run lets the rest run freely. The reducer's handlers of those two transitions; like
the rest of the reducer, plain functions of the state that append commands."""

from __future__ import annotations

from ..errors import WorkflowRuntimeError
from . import outcome, routing
from .commands import CancelTimer, Command, Reply, ResolveWaiter
from .state import RunState
from .transitions import SteppingReleased, StepRequested

__all__ = ["step_requested", "stepping_released"]


def step_requested(state: RunState, t: StepRequested, now: float, out: list[Command]) -> None:
    if state.finished:
        out.append(Reply(None))
        return
    if not state.stepwise:
        out.append(
            Reply(
                error=WorkflowRuntimeError(
                    "step() needs a run started with run(stepwise=True); this run runs freely"
                )
            )
        )
        return
    if state.stepping is not None:
        out.append(
            Reply(error=WorkflowRuntimeError("another step() of this run has not finished yet"))
        )
        return
    if state.answered:  # hand over an answer that arrived between steps
        waiter, event = state.answered.popleft()
        inv = state.in_flight[waiter.invocation]
        state.stepping = (inv.id, len(inv.produced))
        if inv.waiting:
            inv.waiting = False
            state.waiting -= 1
        out.append(ResolveWaiter(waiter, event))
        outcome.settle_status(state, now, out)
        return
    started = routing.take(state, now, limit=1)
    if not started and state.retrying:  # a retry waits for its timer: run it now
        inv = min((state.in_flight[i] for i in state.retrying), key=lambda inv: inv.seq)
        state.retrying.discard(inv.id)
        out.append(CancelTimer(("retry", inv.id)))
        state.busy[inv.step] += 1
        inv.started = now
        started = [inv]
    if started:
        inv = started[0]
        state.stepping = (inv.id, len(inv.produced))
        outcome.start(state, inv, out)
        outcome.settle_status(state, now, out)
        return
    if state.stop is not None:
        outcome.finish(state, "done", now, out)
        out.append(Reply(None))
    elif state.is_waiting():
        asked = "; ".join(repr(q) for q in state.questions) or "an event from outside"
        out.append(
            Reply(
                error=WorkflowRuntimeError(
                    f"run {state.run_id!r} is waiting for {asked}; answer it with "
                    f"handler.ctx.send_event(...) and call step() again"
                )
            )
        )
    else:
        outcome.settle_status(state, now, out)  # says what holds it
        out.append(
            Reply(
                error=WorkflowRuntimeError(
                    f"run {state.run_id!r} has nothing to run: {state.stalled}; send it an event "
                    f"with handler.ctx.send_event(...), or stop it with await handler.cancel()"
                )
            )
        )


def stepping_released(state: RunState, t: SteppingReleased, now: float, out: list[Command]) -> None:
    if not state.stepwise or state.finished:
        return
    state.stepwise = False
    while state.answered:
        waiter, event = state.answered.popleft()
        inv = state.in_flight.get(waiter.invocation)
        if inv is not None and inv.waiting:
            inv.waiting = False
            state.waiting -= 1
        out.append(ResolveWaiter(waiter, event))
    outcome.advance(state, now, out)
