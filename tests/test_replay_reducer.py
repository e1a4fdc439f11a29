"""Replay as a reducer decision, with no event loop: a ``ReplayTable`` in the state makes the
reducer answer an invocation about to start with ``ReplayStep`` instead of ``StartInvocation``,
and ``StepReplayed`` applies the recorded events in one transition."""

from __future__ import annotations

from typing import Any

from helpers import started_state

from notebook_workflows import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.runtime import commands as C
from notebook_workflows.runtime import routing
from notebook_workflows.runtime import transitions as T
from notebook_workflows.runtime.reducer import reduce
from notebook_workflows.runtime.replay import Effects, ReplayTable, input_key
from notebook_workflows.runtime.state import RunState
from notebook_workflows.snapshot import code_hash


class Half(Event):
    n: int


class Note(Event):
    text: str


class Pipe(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Half:
        raise NotImplementedError  # never called: the tests play the steps' part

    @step
    async def end(self, ev: Half) -> StopEvent:
        raise NotImplementedError

    @step(replay=False)
    async def notify(self, ev: Note) -> None:
        raise NotImplementedError


SPECS = Pipe._step_specs()
CODES = {name: code_hash(spec.fn) for name, spec in SPECS.items()}


def fresh(table: ReplayTable | None, **fields: Any) -> RunState:
    state = started_state(Pipe, **fields)
    state.replay = table
    return state


def begin_recorded(n: int, effects: Effects | str) -> ReplayTable:
    table = ReplayTable(dict(CODES))
    table.add("begin", CODES["begin"], input_key(None, StartEvent(n=n)), effects)
    return table


def test_a_recorded_call_is_replayed_instead_of_started() -> None:
    effects = Effects(((Half(n=6), None),), (Note(text="hi"),), {"k": 1})
    state = fresh(begin_recorded(3, effects), n=3)
    out = reduce(state, T.RunStarted(), now=10.0)
    [replay] = [c for c in out if isinstance(c, C.ReplayStep)]
    assert not [c for c in out if isinstance(c, C.StartInvocation)]
    assert replay.effects is effects and replay.inv.step == "begin"
    out = reduce(state, T.StepReplayed(replay.inv, replay.effects), now=10.0)
    # the streamed event is published, the emitted one starts the next step for real
    published = [c.item for c in out if isinstance(c, C.Publish) and c.stream]
    assert published == [Note(text="hi")]
    [end] = [c.inv for c in out if isinstance(c, C.StartInvocation)]
    assert (end.step, end.event) == ("end", Half(n=6))
    assert end.ran_because == "the recorded run never called it"
    assert replay.inv.replayed and replay.inv.writes == {"k": 1}
    assert state.step_replays == {"begin": 1, "end": 0, "notify": 0}
    assert (state.steps_done, state.busy["begin"], state.step_runs["begin"]) == (1, 0, 1)


def test_a_call_with_another_input_starts_and_says_why() -> None:
    state = fresh(begin_recorded(3, Effects()), n=4)
    out = reduce(state, T.RunStarted(), now=10.0)
    [inv] = [c.inv for c in out if isinstance(c, C.StartInvocation)]
    assert inv.ran_because == "no recorded call of it had this input event"


def test_a_changed_step_starts_and_says_its_code_changed() -> None:
    table = ReplayTable(dict(CODES))
    table.add("begin", "0123456789ab", input_key(None, StartEvent(n=3)), Effects())
    state = fresh(table, n=3)
    [inv] = [
        c.inv for c in reduce(state, T.RunStarted(), now=0) if isinstance(c, C.StartInvocation)
    ]
    assert inv.ran_because == "its code changed since the recorded run"


def test_a_call_recorded_as_unsafe_starts_with_the_recorded_reason() -> None:
    state = fresh(begin_recorded(3, "it calls ctx.collect_events"), n=3)
    [inv] = [
        c.inv for c in reduce(state, T.RunStarted(), now=0) if isinstance(c, C.StartInvocation)
    ]
    assert inv.ran_because == "it calls ctx.collect_events"


def test_a_step_marked_replay_false_starts_although_recorded() -> None:
    effects = Effects(((Note(text="x"), None),))
    table = begin_recorded(3, effects)
    table.add("notify", CODES["notify"], input_key(None, Note(text="x")), Effects())
    state = fresh(table, n=3)
    [replay] = [c for c in reduce(state, T.RunStarted(), now=0) if isinstance(c, C.ReplayStep)]
    out = reduce(state, T.StepReplayed(replay.inv, replay.effects), now=0)
    [inv] = [c.inv for c in out if isinstance(c, C.StartInvocation)]
    assert (inv.step, inv.ran_because) == ("notify", "it is marked @step(replay=False)")


def test_a_checkpointed_replay_is_recorded_as_a_replay_and_the_stop_ends_the_run() -> None:
    table = begin_recorded(3, Effects(((StopEvent(result=9), None),)))
    state = fresh(table, n=3)
    state.checkpointed = True
    [replay] = [c for c in reduce(state, T.RunStarted(), now=0) if isinstance(c, C.ReplayStep)]
    out = reduce(state, T.StepReplayed(replay.inv, replay.effects), now=11.0)
    assert C.WriteCheckpoint("replay", "begin") in out
    finish = out[-1]
    assert isinstance(finish, C.FinishRun) and (finish.status, finish.result) == ("done", 9)


def test_each_recorded_call_is_used_once() -> None:
    table = begin_recorded(3, Effects(((Half(n=1), None),)))
    state = fresh(table, n=3)
    assert len(table) == 1
    reduce(state, T.RunStarted(), now=0)
    assert len(table) == 0
    assert table.take(next(iter(state.in_flight.values())), input_key(None, StartEvent(n=3))) == (
        "no recorded call of it had this input event"
    )


def test_a_late_replay_report_after_the_run_ended_changes_nothing() -> None:
    state = fresh(begin_recorded(3, Effects(((Half(n=1), None),))), n=3)
    [replay] = [c for c in reduce(state, T.RunStarted(), now=0) if isinstance(c, C.ReplayStep)]
    reduce(state, T.CancelRequested(), now=0)
    assert reduce(state, T.StepReplayed(replay.inv, replay.effects), now=0) == []
    assert state.step_replays["begin"] == 0


def test_a_changed_step_that_runs_gets_the_recorded_once_results() -> None:
    table = ReplayTable(dict(CODES))
    journal = {"charge": "r-1"}
    table.add("begin", "0123456789ab", input_key(None, StartEvent(n=3)), Effects(), journal)
    state = fresh(table, n=3)
    [inv] = [
        c.inv for c in reduce(state, T.RunStarted(), now=0) if isinstance(c, C.StartInvocation)
    ]
    assert inv.journal == journal and inv.journal is not journal


class Ask(Workflow):
    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        raise NotImplementedError

    @step
    async def take(self, ev: HumanResponseEvent) -> StopEvent:
        raise NotImplementedError


def test_a_question_asked_again_is_answered_with_the_recorded_answer() -> None:
    specs = Ask._step_specs()
    question = InputRequiredEvent(prefix="colour?")
    table = ReplayTable({name: code_hash(spec.fn) for name, spec in specs.items()})
    table.add_answer(input_key(None, question), HumanResponseEvent(response="blue"))
    state = RunState(specs, "run-2", "Ask")
    state.start_event = StartEvent()
    routing.route(state, state.start_event)
    state.replay = table
    [inv] = [
        c.inv for c in reduce(state, T.RunStarted(), now=0) if isinstance(c, C.StartInvocation)
    ]
    out = reduce(state, T.InvocationReturned(inv, 1, InputRequiredEvent(prefix="colour?")), now=0)
    [take] = [c.inv for c in out if isinstance(c, C.StartInvocation)]
    assert (take.step, take.event.response) == ("take", "blue")
    assert not state.questions and not table.answers and state.status == "running"
