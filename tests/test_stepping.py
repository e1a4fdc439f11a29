"""await handler.step(): one invocation per call, oldest event first, then run freely."""

from __future__ import annotations

import pytest
from flows import Ask

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from notebook_workflows.checkpoint import MemoryStore


class Split(Event):
    part: int


class Part(Event):
    part: int


class Pipeline(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Split | None:
        ctx.send_event(Split(part=1))
        ctx.send_event(Split(part=2))
        return None

    @step(num_workers=4)
    async def work(self, ctx: Context, ev: Split) -> Part:
        await ctx.store.set(f"part{ev.part}", True)
        return Part(part=ev.part * 10)

    @step
    async def join(self, ctx: Context, ev: Part) -> StopEvent | None:
        got = ctx.collect_events(ev, [Part, Part])
        return None if got is None else StopEvent(result=[p.part for p in got])


async def test_each_step_call_runs_one_invocation_and_returns_what_it_produced() -> None:
    handler = Pipeline().run(stepwise=True)
    assert handler.steps_done == 0
    assert [e.part for e in await handler.step()] == [1, 2]  # sent events count
    assert await handler.step() == [Part(part=10)]  # oldest first: part 1
    assert await handler.ctx.store.get("part2", default=False) is False
    assert await handler.step() == [Part(part=20)]
    assert await handler.step() == []  # join collected one of two
    last = await handler.step()
    assert [type(e) for e in last] == [StopEvent]
    assert await handler.step() is None
    assert await handler == [10, 20]


async def test_awaiting_a_stepwise_run_runs_the_rest_freely() -> None:
    handler = Pipeline().run(stepwise=True)
    await handler.step()
    assert await handler == [10, 20]


async def test_nothing_runs_before_the_first_step() -> None:
    handler = Pipeline().run(stepwise=True)
    for _ in range(5):
        import asyncio

        await asyncio.sleep(0)
    assert handler.steps_done == 0 and handler.status == "running"
    await handler.cancel()


async def test_step_on_a_free_run_is_refused() -> None:
    handler = Pipeline().run()
    with pytest.raises(WorkflowRuntimeError, match="stepwise=True"):
        await handler.step()
    await handler


async def test_a_failing_step_raises_from_step() -> None:
    class Broken(Workflow):
        @step
        async def only(self, ev: StartEvent) -> StopEvent:
            raise ValueError("bad")

    handler = Broken().run(stepwise=True)
    with pytest.raises(ValueError, match="bad"):
        await handler.step()
    assert handler.status == "failed"
    assert await handler.step() is None


async def test_human_in_the_loop_while_stepping() -> None:
    handler = Ask().run(stepwise=True)
    assert await handler.step() == []  # the step asked and now waits
    assert handler.status == "running" or handler.status == "waiting"
    with pytest.raises(WorkflowRuntimeError, match="waiting for InputRequiredEvent"):
        await handler.step()
    handler.ctx.send_event(HumanResponseEvent(response="go"))
    last = await handler.step()
    assert last == [StopEvent(result="go")]
    assert await handler == "go"


class Flaky(Workflow):
    calls = 0

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0.001, maximum_attempts=3))
    async def fetch(self, ev: StartEvent) -> StopEvent:
        type(self).calls += 1
        if type(self).calls < 3:
            raise ConnectionError("try again")
        return StopEvent(result=type(self).calls)


async def test_a_step_call_includes_the_retries_of_its_invocation() -> None:
    Flaky.calls = 0
    handler = Flaky().run(stepwise=True)
    assert await handler.step() == [StopEvent(result=3)]
    assert Flaky.calls == 3 and await handler == 3


async def test_each_manual_step_is_checkpointed() -> None:
    store = MemoryStore()
    handler = Pipeline().run(stepwise=True, checkpoint=store, run_id="stepped")
    await handler.step()
    await handler.step()
    assert [s.step for s in store.history("stepped")] == [None, "split", "work"]
    assert store.latest("stepped").context["steps_done"] == 2
    await handler
