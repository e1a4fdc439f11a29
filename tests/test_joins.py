"""Fan-in by signature, as llama-index-workflows 2.26 documents it: a step returning
``list[E]`` fans out, a step taking ``list[E]`` runs once with the whole batch (``Collect(All())``,
the default) or with the first ``n`` (``Collect(Take(n))``); nested fan-outs join level by
level; a half-collected join survives a snapshot and a checkpoint, and completes once."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, ClassVar

import pytest

from notebook_workflows import (
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    WorkflowValidationError,
    catch_error,
    step,
)
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.collect import All, Collect, Take
from notebook_workflows.events import StepFailedEvent


class Task(Event):
    n: int


class Done(Event):
    n: int


class Skipped(Event):
    n: int


# Which tasks of a fan-out have finished, so that tests can order the finishes by the tasks
# themselves rather than by how long each sleeps.
FINISHED: dict[int, asyncio.Event] = {}


def fan_out_of(width: int) -> list[Task]:
    FINISHED.clear()
    FINISHED.update({i: asyncio.Event() for i in range(width)})
    return [Task(n=i) for i in range(width)]


async def after(*tasks: int) -> None:
    """Wait until these tasks have finished and the run has had turns to take them in."""
    for n in tasks:
        if n in FINISHED:
            await FINISHED[n].wait()
    for _ in range(20):
        await asyncio.sleep(0)


class Batch(Workflow):
    ran: ClassVar[list[Any]] = []

    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        return fan_out_of(ev.get("width", 5))

    @step(num_workers=5)
    async def work(self, ev: Task) -> Done | None:
        await after(ev.n + 1)  # the last sent finishes first
        FINISHED[ev.n].set()
        Batch.ran.append(ev.n)
        return None if ev.get("drop") and ev.n % 2 == 0 else Done(n=ev.n)

    @step
    async def join(self, events: list[Done]) -> StopEvent:
        Batch.ran.append("join")
        return StopEvent(result=[e.n for e in events])


@pytest.fixture(autouse=True)
def clean() -> None:
    Batch.ran = []
    Resumable.ran = []
    Resumable.broken = True


async def test_a_list_parameter_receives_the_whole_batch_once_in_completion_order() -> None:
    result = await Batch().run(width=5)
    assert result == [4, 3, 2, 1, 0]  # completion order, not the order of the fan-out
    assert Batch.ran.count("join") == 1


async def test_an_empty_fan_out_releases_the_join_with_an_empty_list() -> None:
    assert await Batch().run(width=0) == []


class Dropping(Batch):
    @step(num_workers=5)
    async def work(self, ev: Task) -> Done | None:
        return None if ev.n % 2 == 0 else Done(n=ev.n)


async def test_a_branch_returning_none_drops_out_and_the_join_fires_with_the_rest() -> None:
    assert sorted(await Dropping().run(width=6)) == [1, 3, 5]


class Fastest(Workflow):
    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        return fan_out_of(ev.width)

    @step(num_workers=5)
    async def work(self, ev: Task) -> Done:
        await after(ev.n + 1)  # the last sent finishes first
        FINISHED[ev.n].set()
        return Done(n=ev.n)

    @step
    async def first(self, events: Annotated[list[Done], Collect(Take(2))]) -> StopEvent:
        return StopEvent(result=[e.n for e in events])


async def test_take_fires_at_the_nth_arrival_with_the_first_n() -> None:
    assert await Fastest().run(width=5) == [4, 3]


async def test_take_with_fewer_members_than_n_fires_when_the_batch_closes() -> None:
    assert await Fastest().run(width=1) == [0]


class Explicit(Batch):
    @step
    async def join(self, events: Annotated[list[Done], Collect(All())]) -> StopEvent:
        return StopEvent(result=len(events))


async def test_collect_all_is_the_same_as_a_bare_list() -> None:
    assert await Explicit().run(width=4) == 4


class Mixed(Workflow):
    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        return [Task(n=i) for i in range(4)]

    @step(num_workers=4)
    async def work(self, ev: Task) -> Done | Skipped:
        return Skipped(n=ev.n) if ev.n % 2 else Done(n=ev.n)

    @step
    async def join(self, events: list[Done | Skipped]) -> StopEvent:
        return StopEvent(result=sorted((type(e).__name__, e.n) for e in events))


async def test_a_union_list_collects_a_flat_batch_of_both_types() -> None:
    assert await Mixed().run() == [("Done", 0), ("Done", 2), ("Skipped", 1), ("Skipped", 3)]


class InnerTask(Event):
    outer: int
    inner: int


class InnerSummary(Event):
    outer: int
    total: int


class Nested(Workflow):
    per_inner_runs: ClassVar[int] = 0

    @step
    async def outer(self, ev: StartEvent) -> list[Task]:
        return [Task(n=o) for o in range(3)]

    @step(num_workers=3)
    async def inner(self, ev: Task) -> list[InnerTask]:
        return [InnerTask(outer=ev.n, inner=i) for i in range(ev.n + 2)]

    @step(num_workers=4)
    async def inner_work(self, ev: InnerTask) -> Done:
        await asyncio.sleep(0.001 * ev.inner)
        return Done(n=ev.outer)

    @step
    async def per_inner(self, events: list[Done]) -> InnerSummary:
        Nested.per_inner_runs += 1
        assert len({e.n for e in events}) == 1  # each inner batch stays apart
        return InnerSummary(outer=events[0].n, total=len(events))

    @step
    async def per_outer(self, events: list[InnerSummary]) -> StopEvent:
        return StopEvent(result=sorted((s.outer, s.total) for s in events))


async def test_nested_fan_outs_join_level_by_level() -> None:
    Nested.per_inner_runs = 0
    assert await Nested().run() == [(0, 2), (1, 3), (2, 4)]
    assert Nested.per_inner_runs == 3


class Again(Event):
    round: int


class Rounds(Workflow):
    @step
    async def fan_out(self, ev: StartEvent | Again) -> list[Task]:
        r = getattr(ev, "round", 0)
        return [Task(n=r * 10 + i) for i in range(r + 1)]

    @step(num_workers=3)
    async def work(self, ev: Task) -> Done:
        return Done(n=ev.n)

    @step
    async def join(self, ctx: Context, events: list[Done]) -> Again | StopEvent:
        seen = await ctx.store.get("seen", default=[])
        seen.append(sorted(e.n for e in events))
        await ctx.store.set("seen", seen)
        return Again(round=len(seen)) if len(seen) < 3 else StopEvent(result=seen)


async def test_each_fan_out_is_joined_on_its_own() -> None:
    assert await Rounds().run() == [[0], [10, 11], [20, 21, 22]]


class Sending(Batch):
    @step
    async def fan_out(self, ctx: Context, ev: StartEvent) -> list[Task]:
        if ev.get("target"):
            ctx.send_event(Done(n=99), step="join")
        else:
            ctx.send_event(Done(n=99))  # a member of no fan-out: the join ignores it
        return [Task(n=1)]


async def test_a_sent_event_is_no_member_of_a_fan_out() -> None:
    assert await Sending().run() == [1]
    with pytest.raises(WorkflowRuntimeError, match=r"step 'join' takes a list\[\.\.\.\]"):
        await Sending().run(target=True)


def test_a_list_parameter_that_no_fan_out_reaches_is_refused() -> None:
    class Orphan(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> Done:
            return Done(n=1)

        @step
        async def join(self, events: list[Done]) -> StopEvent:
            return StopEvent(result=len(events))

    with pytest.raises(WorkflowValidationError, match=r"step 'join' takes events: list\[Done\]"):
        Orphan().validate()


def test_a_list_parameter_beside_another_event_parameter_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match=r"must be the step's only event parameter"):

        class Two(Workflow):
            @step
            async def join(self, ev: StartEvent, events: list[Done]) -> StopEvent:
                return StopEvent()


def test_collect_marks_only_a_list() -> None:
    with pytest.raises(WorkflowValidationError, match=r"Collect marks a list\[E\] parameter"):

        class Wrong(Workflow):
            @step
            async def join(self, ev: Annotated[Done, Collect()]) -> StopEvent:
                return StopEvent()


class Resumable(Workflow):
    ran: ClassVar[list[Any]] = []
    broken: ClassVar[bool] = True
    snapshot: ClassVar[dict[str, Any] | None] = None

    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        return [Task(n=i) for i in range(4)]

    @step
    async def work(self, ctx: Context, ev: Task) -> Done:
        Resumable.ran.append(ev.n)
        if ev.n == 2:
            Resumable.snapshot = json.loads(json.dumps(ctx.to_dict()))
        if ev.n == 2 and Resumable.broken:
            raise ConnectionError("down")
        return Done(n=ev.n)

    @step
    async def join(self, events: list[Done]) -> StopEvent:
        Resumable.ran.append("join")
        return StopEvent(result=sorted(e.n for e in events))


async def test_a_snapshot_taken_mid_join_resumes_and_the_join_completes_once() -> None:
    with pytest.raises(ConnectionError):
        await Resumable().run()
    data = Resumable.snapshot
    assert data is not None
    assert [item["event"]["data"]["n"] for item in data["collected"]["join#1"]] == [0, 1]
    assert data["joins"]["streams"][0]["open"] == 2  # Task 2 running, Task 3 queued
    Resumable.broken, Resumable.ran = False, []
    workflow = Resumable()
    restored = Context.from_dict(workflow, data)
    assert await workflow.run(ctx=restored) == [0, 1, 2, 3]
    assert Resumable.ran == [2, 3, "join"]  # 0 and 1 are in the buffer: not run again


async def test_a_checkpointed_run_failing_mid_join_resumes_from_the_store() -> None:
    store = MemoryStore()
    handler = Resumable().run(checkpoint=store)
    with pytest.raises(ConnectionError):
        await handler
    latest = store.latest(handler.run_id).context
    assert len(latest["collected"]["join#1"]) == 2 and latest["joins"]["streams"]
    Resumable.broken, Resumable.ran = False, []
    assert await Resumable().resume(handler.run_id, store=store) == [0, 1, 2, 3]
    assert Resumable.ran == [2, 3, "join"]


def test_the_graph_shows_the_members_going_into_the_join() -> None:
    source = Fastest().draw().source
    assert f'"event:{__name__}.Done" -> "step:first"' in source
    assert f'"step:fan_out" -> "event:{__name__}.Task"' in source
    assert "joins events: list[Done], first 2" in source
    assert "fans out a list" in source


class SavedInJoin(Workflow):
    snapshot: ClassVar[dict[str, Any] | None] = None

    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        return [Task(n=i) for i in range(3)]

    @step
    async def work(self, ev: Task) -> Done:
        return Done(n=ev.n)

    @step
    async def join(self, ctx: Context, events: list[Done]) -> StopEvent:
        SavedInJoin.snapshot = json.loads(json.dumps(ctx.to_dict()))
        return StopEvent(result=[e.n for e in events])


async def test_a_join_saved_while_it_runs_runs_again_with_the_same_members() -> None:
    first = await SavedInJoin().run()
    data = SavedInJoin.snapshot
    assert data is not None
    [running] = data["in_flight"]
    assert running["step"] == "join" and running["event"]["type"].endswith(":Gathered")
    workflow = SavedInJoin()
    assert await workflow.run(ctx=Context.from_dict(workflow, data)) == first


class Recovered(Workflow):
    @step
    async def fan_out(self, ev: StartEvent) -> list[Task]:
        return fan_out_of(4)

    @step(num_workers=4)
    async def work(self, ev: Task) -> Done:
        if ev.n == 1:
            raise ValueError("task 1 broke")
        FINISHED[ev.n].set()
        return Done(n=ev.n)

    @catch_error(for_steps=["work"])
    async def fallback(self, ev: StepFailedEvent) -> Done:
        await after(0, 2, 3)  # the others are in the batch by now: it must wait for this
        return Done(n=-ev.input_event.n)

    @step
    async def join(self, events: list[Done]) -> StopEvent:
        return StopEvent(result=sorted(e.n for e in events))


async def test_a_failure_a_handler_recovers_stays_in_its_batch() -> None:
    assert await Recovered().run() == [-1, 0, 2, 3]
