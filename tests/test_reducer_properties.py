"""Random runs folded through the reducer: whatever happens, in whatever order, the state stays
whole and a run that ended starts nothing.

Hypothesis plays the world around a small workflow: steps return, fail or are cancelled in
any order, timers fire, events come from outside, a human is asked and answers, the run is
cancelled or aborted and continued, and the questions the reducer asks of user code (a retry
policy) are answered late, out of order or never.

(Folding the same transitions written down by id over a fresh state does not yet give the same
run in every case: transitions still carry the state's live invocations and waiters, matched by
identity, so a written log cannot say which of two objects of one id a late report meant.)
"""

from __future__ import annotations

from typing import Any

from helpers import started_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.runtime import commands as C
from notebook_workflows.runtime import transitions as T
from notebook_workflows.runtime.reducer import reduce
from notebook_workflows.runtime.state import STATUSES, Invocation, RunState, Waiter


class Item(Event):
    n: int


class Stray(Event):
    """An event no step accepts."""


class Small(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=1, maximum_attempts=3), timeout=5)
    async def begin(self, ev: StartEvent) -> Item | None:
        raise NotImplementedError  # never called: hypothesis plays the steps' part

    @step(num_workers=2)
    async def work(self, ev: Item) -> Item | StopEvent | None:
        raise NotImplementedError


# What may still come out of the reducer once the run has ended: answers to the asking code,
# records for listeners, the checkpoint of a ctx.once record, a timer stopped, how to settle.
AFTER_END = {C.Reply, C.Publish, C.WriteCheckpoint, C.CancelTimer, C.SettleRun, C.LogError}
STARTS = {C.StartInvocation, C.ReplayStep, C.CancelInvocation, C.AskRetryPolicy}


class World:
    """What the driver would know: attempts running, timers set, questions open."""

    def __init__(self, stepwise: bool) -> None:
        self.state = started_state(Small, n=0)
        self.state.stepwise = stepwise
        self.state.timeout = 30.0
        self.now = 0.0
        self.running: dict[tuple[int, int], Invocation] = {}
        self.cancelling: set[tuple[int, int]] = set()
        self.timers: set[tuple[Any, ...]] = set()
        self.asks: list[C.AskRetryPolicy] = []
        self.waiters: list[Waiter] = []
        self.ended = False
        self.commands: list[str] = []

    def fold(self, transition: Any) -> list[Any]:
        out = reduce(self.state, transition, self.now)
        self.commands += [type(c).__name__ for c in out]
        for command in out:
            self.carry_out(command)
        check_whole(self.state)
        return out

    def carry_out(self, command: Any) -> None:
        kind = type(command)
        if self.ended:
            assert kind in AFTER_END, f"{kind.__name__} after the run ended"
        if kind is C.StartInvocation:
            inv = command.inv
            assert self.state.in_flight.get(inv.id) is inv
            assert (inv.id, inv.attempt) not in self.running, "started twice"
            self.running[(inv.id, inv.attempt)] = inv
        elif kind is C.CancelInvocation:
            self.cancelling.add((command.inv.id, command.inv.attempt))
        elif kind is C.ScheduleTimer:
            self.timers.add(command.key)
        elif kind is C.CancelTimer:
            self.timers.discard(command.key)
        elif kind is C.AskRetryPolicy:
            assert all(ask.inv_id != command.inv_id for ask in self.asks), "asked twice"
            self.asks.append(command)
        elif kind is C.FinishRun:
            assert not self.ended, "the run ended twice"
            assert command.status in ("done", "failed", "cancelled")
            self.ended = True
            self.timers.clear()
        if self.ended:
            assert self.state.finished


def check_whole(state: RunState) -> None:
    """What must hold of a run's state after every transition."""
    assert state.status in STATUSES
    assert all(inv.id == key for key, inv in state.in_flight.items())
    flying = list(state.in_flight.values())
    assert len({id(inv) for inv in flying}) == len(flying)
    assert all(state.in_flight.get(inv.id) is inv for inv in state.ready)
    assert state.retrying <= set(state.in_flight) and set(state.asked) <= set(state.in_flight)
    assert state.waiting == sum(inv.waiting for inv in flying)
    assert state.queued == sum(len(q) for q in state.queues.values())
    assert state.fed == {name for name, q in state.queues.items() if q}
    assert all(n >= 0 for n in state.busy.values())
    if state.status == "done":
        assert not state.in_flight and not state.queued and not state.asked


def act(world: World, data: st.DataObject) -> None:
    """One thing happening to the run, drawn from what can happen now."""
    state = world.state
    choices = ["send", "advance", "listen", "cancel", "abort"]
    # a step suspended in wait_for_event does nothing until its wait ends
    suspended = {waiter.invocation for waiter in world.waiters}
    running = [
        key
        for key, inv in world.running.items()
        if state.in_flight.get(key[0]) is inv and key[0] not in suspended
    ]
    if running:
        choices += ["return", "return", "fail", "wait", "stream"]
    if world.cancelling & set(world.running):
        choices.append("cancelled")
    if world.timers:
        choices.append("fire")
    if world.asks:
        choices += ["answer", "answer"]
    if world.waiters:
        choices += ["human", "wait_ended"]
    if state.stepwise:
        choices += ["step", "step", "release"]
    if world.ended and state.status in ("failed", "cancelled"):
        choices.append("continue")
    what = data.draw(st.sampled_from(choices), label="what")
    world.now += data.draw(st.sampled_from([0.0, 0.5, 2.0]), label="later")
    if what in ("return", "fail", "wait", "stream"):
        key = data.draw(st.sampled_from(sorted(running)), label="which")
        reported(world, what, key, data)
    else:
        HAPPENINGS[what](world, data)


def reported(world: World, what: str, key: tuple[int, int], data: st.DataObject) -> None:
    inv = world.running[key]
    if what == "wait":
        question = InputRequiredEvent(prefix=f"q{inv.id}.{inv.wait_calls}")
        waiter = Waiter(inv.id, inv.wait_calls, (HumanResponseEvent,), {}, question)
        inv.wait_calls += 1
        world.waiters.append(waiter)
        world.fold(T.WaitStarted(inv, waiter))
        return
    if what == "stream":
        world.fold(T.StreamWritten(Item(n=-1), inv))
        return
    del world.running[key]
    if what == "fail":
        world.fold(T.InvocationFailed(inv, key[1], ValueError(f"failed {key}")))
        return
    value = data.draw(
        st.sampled_from([None, Item(n=1), StopEvent(result=7), [Item(n=2), Item(n=3)], Stray()]),
        label="value",
    )
    world.fold(T.InvocationReturned(inv, key[1], value))


def _cancelled(world: World, data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(world.cancelling & set(world.running))))
    inv = world.running.pop(key)
    world.cancelling.discard(key)
    for waiter in [w for w in world.waiters if w.invocation == inv.id]:
        world.waiters.remove(waiter)  # the wait ends first, as the cancelled step unwinds
        if not world.state.finished:
            world.fold(T.WaitEnded(inv, waiter, None))
    world.fold(T.InvocationCancelled(inv, key[1]))


def _fire(world: World, data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(world.timers, key=repr)), label="timer")
    world.timers.discard(key)
    world.fold(T.TimerFired(key))


def _answer(world: World, data: st.DataObject) -> None:
    ask = world.asks.pop(data.draw(st.integers(0, len(world.asks) - 1), label="ask"))
    delay = data.draw(st.sampled_from([None, 0.0, 1.0]), label="delay")
    note = "" if delay is not None or data.draw(st.booleans()) else "(its policy raised)"
    world.fold(T.RetryDecided(ask.inv_id, ask.attempt, delay, note))


def _human(world: World, data: st.DataObject) -> None:
    world.fold(T.EventSent(HumanResponseEvent(response="yes")))


def _wait_ended(world: World, data: st.DataObject) -> None:
    waiter = world.waiters.pop(data.draw(st.integers(0, len(world.waiters) - 1)))
    inv = world.state.in_flight.get(waiter.invocation)
    if inv is not None and not (world.state.finished and waiter.resolved is None):
        world.fold(T.WaitEnded(inv, waiter, waiter.resolved))


def _continue(world: World, data: st.DataObject) -> None:
    world.ended = False
    world.running.clear()  # the driver of the ended run stopped its steps
    world.cancelling.clear()
    world.asks.clear()
    world.waiters.clear()
    world.fold(T.RunStarted(continuing=True))


HAPPENINGS = {
    "send": lambda world, data: world.fold(T.EventSent(Item(n=data.draw(st.integers(0, 3))))),
    "advance": lambda world, data: world.fold(T.Advanced()),
    "listen": lambda world, data: world.fold(T.ListenersChanged(data.draw(st.booleans()))),
    "cancel": lambda world, data: world.fold(T.CancelRequested("by hypothesis")),
    "abort": lambda world, data: world.fold(T.RunAborted(RuntimeError("store failed"))),
    "step": lambda world, data: world.fold(T.StepRequested()),
    "release": lambda world, data: world.fold(T.SteppingReleased()),
    "cancelled": _cancelled,
    "fire": _fire,
    "answer": _answer,
    "human": _human,
    "wait_ended": _wait_ended,
    "continue": _continue,
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stepwise=st.booleans(), data=st.data())
def test_random_runs_keep_the_state_whole_and_start_nothing_once_ended(
    stepwise: bool, data: st.DataObject
) -> None:
    world = World(stepwise)
    world.fold(T.RunStarted())
    for _ in range(data.draw(st.integers(1, 40), label="length")):
        act(world, data)
