"""run() in a loop, run_sync() from plain code, data kept on the instance."""

from __future__ import annotations

import asyncio
import threading

import pytest

from notebook_workflows import Context, StartEvent, StopEvent, Workflow, WorkflowRuntimeError, step


class Echo(Workflow):
    @step
    async def only(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=(ev.get("text"), threading.get_ident()))


def test_run_outside_a_loop_says_to_use_run_sync_or_await() -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"await workflow.run.*run_sync"):
        Echo().run(text="hi")


def test_run_sync_in_plain_code() -> None:
    text, _ = Echo().run_sync(text="hi")
    assert text == "hi"


async def test_run_sync_while_a_loop_runs_uses_a_helper_thread() -> None:
    text, thread = Echo().run_sync(text="inside")
    assert text == "inside"
    assert thread != threading.get_ident()
    again = Echo().run_sync(text="again")[1]
    assert again == thread  # the helper thread is reused


async def test_run_sync_raises_the_steps_error() -> None:
    class Broken(Workflow):
        @step
        async def only(self, ev: StartEvent) -> StopEvent:
            raise LookupError("nope")

    with pytest.raises(LookupError, match="nope"):
        Broken().run_sync()


class DbWorkflow(Workflow):
    """The seed's strategy 1: data on the instance persists over run calls."""

    def __init__(self, db: dict[str, int]) -> None:
        self.db = db  # no super().__init__(): allowed

    @step
    async def count(self, ev: StartEvent) -> StopEvent:
        self.db["runs"] = self.db.get("runs", 0) + 1
        return StopEvent(result=self.db["runs"])


async def test_instance_data_persists_over_runs_even_without_super_init() -> None:
    workflow = DbWorkflow({})
    assert await workflow.run() == 1
    assert await workflow.run() == 2
    assert workflow.timeout is None


class Counter(Workflow):
    """Counts its runs in the store."""

    @step
    async def only(self, ctx: Context, ev: StartEvent) -> StopEvent:
        n = await ctx.store.get("n", default=0) + 1
        await ctx.store.set("n", n)
        return StopEvent(result=n)


async def test_a_finished_runs_context_starts_a_new_run_keeping_the_store() -> None:
    workflow = Counter()
    first = workflow.run()
    assert await first == 1
    second = workflow.run(ctx=first.ctx)
    assert await second == 2
    assert second.run_id != first.run_id


async def test_a_start_field_of_the_wrong_type_fails_before_anything_runs() -> None:
    class Typed(StartEvent):
        n: int

    ran = []

    class Flow(Workflow):
        @step
        async def only(self, ev: Typed) -> StopEvent:
            ran.append(1)
            return StopEvent()

    with pytest.raises(ValueError, match="n"):
        Flow().run(n="many")
    await asyncio.sleep(0)
    assert ran == []


class RefusingStore:
    """Checkpoint hooks whose first write fails, like a store that is full or read-only."""

    def run_started(self, ctx: object) -> None:
        raise OSError("disk full")

    def step_completed(self, ctx: object, step: object) -> None: ...

    def run_ended(self, ctx: object) -> None: ...


async def test_a_run_that_fails_to_start_leaves_its_context_reusable() -> None:
    workflow = Counter()
    first = workflow.run()
    await first
    with pytest.raises(OSError, match="disk full"):
        workflow.run(ctx=first.ctx, checkpoint=RefusingStore())
    assert first.ctx.status == "done"
    assert await workflow.run(ctx=first.ctx) == 2  # as if the failed call never happened
