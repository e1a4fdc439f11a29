"""Joins in the reducer alone: fan-out streams, list[E] releases, several event parameters and
the lines of @catch_error, folded transition by transition with no event loop."""

from __future__ import annotations

import copy
from typing import Annotated, Any

from helpers import started, started_state

from notebook_workflows import Event, StartEvent, StopEvent, Workflow, catch_error, step
from notebook_workflows.collect import Collect, Take
from notebook_workflows.events import Gathered, StepFailedEvent
from notebook_workflows.runtime import commands as C
from notebook_workflows.runtime import routing
from notebook_workflows.runtime import transitions as T
from notebook_workflows.runtime.reducer import reduce
from notebook_workflows.runtime.state import RunState


class Task(Event):
    n: int


class Done(Event):
    n: int


class A(Event):
    x: int


class B(Event):
    x: int


class FanIn(Workflow):
    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        raise NotImplementedError  # never called: the tests play the steps' part

    @step(num_workers=4)
    async def work(self, ev: Task) -> Done | None:
        raise NotImplementedError

    @step
    async def join(self, events: list[Done]) -> StopEvent:
        raise NotImplementedError


class FirstTwo(Workflow):
    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        raise NotImplementedError

    @step(num_workers=4)
    async def work(self, ev: Task) -> Done:
        raise NotImplementedError

    @step
    async def first(self, events: Annotated[list[Done], Collect(Take(2))]) -> StopEvent:
        raise NotImplementedError


class Pair(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> A | B:
        raise NotImplementedError

    @step
    async def both(self, a: A, b: B) -> StopEvent:
        raise NotImplementedError


class Lines(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> list[Task]:
        raise NotImplementedError

    @step(num_workers=2)
    async def work(self, ev: Task) -> StopEvent:
        raise NotImplementedError

    @catch_error(max_recoveries=1)
    async def fix(self, ev: StepFailedEvent) -> Task:
        raise NotImplementedError


def fresh(flow: type[Workflow]) -> tuple[RunState, list[Any]]:
    state = started_state(flow)
    return state, started(reduce(state, T.RunStarted(), now=1.0))


def test_a_list_parameter_runs_once_with_the_whole_fan_out_in_completion_order() -> None:
    state, [begin] = fresh(FanIn)
    workers = started(
        reduce(state, T.InvocationReturned(begin, 1, [Task(n=i) for i in range(3)]), now=0)
    )
    assert [w.event.n for w in workers] == [0, 1, 2]
    [stream] = state.joins.streams.values()
    assert (stream.source, stream.open) == ("fan_out", 3)
    assert started(reduce(state, T.InvocationReturned(workers[2], 1, Done(n=2)), now=0)) == []
    assert started(reduce(state, T.InvocationReturned(workers[0], 1, Done(n=0)), now=0)) == []
    assert stream.open == 1 and state.collected["join#1"].total == 2
    [join] = started(reduce(state, T.InvocationReturned(workers[1], 1, Done(n=1)), now=0))
    assert join.step == "join" and isinstance(join.event, Gathered)
    assert [d.n for d in join.event.events["events"]] == [2, 0, 1]
    assert not state.joins.streams and "join#1" not in state.collected


def test_a_branch_that_returns_none_leaves_the_batch_and_an_empty_fan_out_releases_empty() -> None:
    state, [begin] = fresh(FanIn)
    one, two = started(reduce(state, T.InvocationReturned(begin, 1, [Task(n=1), Task(n=2)]), now=0))
    reduce(state, T.InvocationReturned(one, 1, None), now=0)
    [join] = started(reduce(state, T.InvocationReturned(two, 1, Done(n=2)), now=0))
    assert [d.n for d in join.event.events["events"]] == [2]

    state, [begin] = fresh(FanIn)
    [join] = started(reduce(state, T.InvocationReturned(begin, 1, []), now=0))
    assert join.event.events == {"events": []}


def test_take_releases_at_the_nth_arrival_and_drops_the_later_members() -> None:
    state, [begin] = fresh(FirstTwo)
    workers = started(
        reduce(state, T.InvocationReturned(begin, 1, [Task(n=i) for i in range(4)]), now=0)
    )
    reduce(state, T.InvocationReturned(workers[3], 1, Done(n=3)), now=0)
    [first] = started(reduce(state, T.InvocationReturned(workers[1], 1, Done(n=1)), now=0))
    assert [d.n for d in first.event.events["events"]] == [3, 1]
    for inv in (workers[0], workers[2]):
        assert (
            started(reduce(state, T.InvocationReturned(inv, 1, Done(n=inv.event.n)), now=0)) == []
        )
    assert not state.joins.streams and not state.queued  # closed: nothing released twice


def test_several_event_parameters_run_once_one_of_each_has_arrived_oldest_first() -> None:
    state, [begin] = fresh(Pair)
    reduce(state, T.InvocationReturned(begin, 1, A(x=1)), now=0)
    assert state.collected["both#join"].total == 1 and not state.queued
    routing.route(state, A(x=2))
    routing.route(state, B(x=3))
    [(_, gathered)] = state.queues["both"]
    assert gathered.events == {"a": A(x=1), "b": B(x=3)}
    assert [ev for _, ev in state.collected["both#join"].items()] == [A(x=2)]


def test_a_half_collected_join_survives_a_copy_of_the_state() -> None:
    state, [begin] = fresh(FanIn)
    one, two = started(reduce(state, T.InvocationReturned(begin, 1, [Task(n=1), Task(n=2)]), now=0))
    reduce(state, T.InvocationReturned(one, 1, Done(n=1)), now=0)
    copied = copy.deepcopy(state)
    [join] = started(
        reduce(copied, T.InvocationReturned(copied.in_flight[two.id], 1, Done(n=2)), now=0)
    )
    assert [d.n for d in join.event.events["events"]] == [1, 2]


def test_recoveries_are_counted_along_each_line_of_events() -> None:
    state, [begin] = fresh(Lines)
    one, two = started(reduce(state, T.InvocationReturned(begin, 1, [Task(n=1), Task(n=2)]), now=0))
    # each line has its own budget of one recovery
    [fix1] = started(reduce(state, T.InvocationFailed(one, 1, ValueError("one")), now=0))
    reduce(state, T.InvocationFailed(two, 1, ValueError("two")), now=0)
    assert state.status == "running" and state.recoveries == {"fix": 2}
    out = started(reduce(state, T.InvocationReturned(fix1, 1, Task(n=10)), now=0))
    [again] = [inv for inv in out if inv.step == "work"]
    assert state.lineage[again.seq] == {"fix": 1}
    # the same line failing again has spent its budget: the run fails
    out = reduce(state, T.InvocationFailed(again, 1, ValueError("again")), now=0)
    assert isinstance(out[-1], C.FinishRun) and out[-1].status == "failed"
