"""Porting: code written for llama-index-workflows 2.26, with only its import lines changed
(``workflows`` -> ``notebook_workflows``), runs here. docs/porting.md lists what this covers;
each test is one pattern from the peer's documentation, written the way its users write it."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import pytest
from pydantic import BaseModel

# -- the import lines, as the peer's users write them, renamed ---------------------------------
from notebook_workflows import Context, Workflow, step
from notebook_workflows.context import Context as ContextFromModule
from notebook_workflows.errors import WorkflowTimeoutError, WorkflowValidationError
from notebook_workflows.events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
)
from notebook_workflows.handler import WorkflowHandler
from notebook_workflows.resource import Resource
from notebook_workflows.retry_policy import (
    retry_if_exception_type,
    retry_policy,
    stop_after_attempt,
    wait_fixed,
)
from notebook_workflows.testing import WorkflowTestRunner
from notebook_workflows.workflow import Workflow as WorkflowFromModule

# ------------------------------------------------------------------------------------------------


class JokeEvent(Event):
    joke: str


class JokeFlow(Workflow):
    @step
    async def generate(self, ev: StartEvent) -> JokeEvent:
        return JokeEvent(joke=f"a joke about {ev.topic}")

    @step
    async def critique(self, ev: JokeEvent) -> StopEvent:
        return StopEvent(result=f"critique of {ev.joke}")


async def test_a_two_step_workflow_with_start_fields() -> None:
    w = JokeFlow(timeout=60, verbose=False)
    handler = w.run(topic="pirates")
    assert isinstance(handler, WorkflowHandler)
    result = await handler
    assert str(result) == "critique of a joke about pirates"
    assert Context is ContextFromModule and Workflow is WorkflowFromModule


class Progress(Event):
    msg: str


class Streaming(Workflow):
    @step
    async def work(self, ctx: Context, ev: StartEvent) -> StopEvent:
        for i in range(3):
            ctx.write_event_to_stream(Progress(msg=f"step {i}"))
        return StopEvent(result="done")


async def test_streaming_events_while_the_run_goes_on() -> None:
    handler = Streaming().run()
    seen = []
    async for ev in handler.stream_events():
        if isinstance(ev, Progress):
            seen.append(ev.msg)
    assert await handler == "done"
    assert seen == ["step 0", "step 1", "step 2"]


class Counted(Workflow):
    @step
    async def count(self, ctx: Context, ev: StartEvent) -> StopEvent:
        n = await ctx.store.get("n", default=0)
        await ctx.store.set("n", n + 1)
        async with ctx.store.edit_state() as state:
            state["seen"] = [*state.get("seen", []), ev.label]
        return StopEvent(result=n + 1)


async def test_state_survives_a_context_passed_to_the_next_run() -> None:
    w = Counted()
    handler = w.run(label="a")
    assert await handler == 1
    assert await w.run(ctx=handler.ctx, label="b") == 2
    assert await handler.ctx.store.get("seen") == ["a", "b"]


async def test_a_context_saved_as_json_and_restored_keeps_the_state() -> None:
    w = Counted()
    handler = w.run(label="a")
    await handler
    data = json.loads(json.dumps(handler.ctx.to_dict()))
    restored = Context.from_dict(w, data)
    assert await w.run(ctx=restored, label="b") == 2


class CounterState(BaseModel):
    count: int = 0


class TypedState(Workflow):
    @step
    async def bump(self, ctx: Context[CounterState], ev: StartEvent) -> StopEvent:
        async with ctx.store.edit_state() as state:
            state.count += 1
        return StopEvent(result=await ctx.store.get("count"))


async def test_typed_state_with_a_pydantic_model() -> None:
    w = TypedState()
    handler = w.run()
    assert await handler == 1
    assert await w.run(ctx=handler.ctx) == 2


class Item(Event):
    n: int


class Done(Event):
    n: int


class FanOut(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Item | None:
        await ctx.store.set("total", len(ev.numbers))
        for n in ev.numbers:
            ctx.send_event(Item(n=n))
        return None

    @step(num_workers=4)
    async def square(self, ev: Item) -> Done:
        await asyncio.sleep(0)
        return Done(n=ev.n * ev.n)

    @step
    async def join(self, ctx: Context, ev: Done) -> StopEvent | None:
        total = await ctx.store.get("total")
        done = ctx.collect_events(ev, [Done] * total)
        if done is None:
            return None
        return StopEvent(result=sorted(d.n for d in done))


async def test_fan_out_with_send_event_and_join_with_collect_events() -> None:
    assert await FanOut().run(numbers=[1, 2, 3]) == [1, 4, 9]


class Hitl(Workflow):
    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Name? ")
        )
        return StopEvent(result=f"hello {answer.response}")


async def test_human_in_the_loop_answered_from_the_stream() -> None:
    handler = Hitl().run()
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            assert ev.prefix == "Name? "
            handler.ctx.send_event(HumanResponseEvent(response="Ada"))
    assert await handler == "hello Ada"


class Memory:
    def __init__(self) -> None:
        self.items: list[str] = []


def get_memory(*args: object, **kwargs: object) -> Memory:
    return Memory()


class WithMemory(Workflow):
    @step
    async def first(
        self, ev: StartEvent, memory: Annotated[Memory, Resource(get_memory)]
    ) -> JokeEvent:
        memory.items.append("first")
        return JokeEvent(joke="x")

    @step
    async def second(
        self, ev: JokeEvent, memory: Annotated[Memory, Resource(get_memory)]
    ) -> StopEvent:
        memory.items.append("second")
        return StopEvent(result=list(memory.items))


async def test_a_resource_injected_by_annotation_is_shared_between_steps() -> None:
    assert await WithMemory().run() == ["first", "second"]


class Flaky(Workflow):
    attempts = 0

    @step(
        retry_policy=retry_policy(
            retry=retry_if_exception_type(ConnectionError),
            wait=wait_fixed(0),
            stop=stop_after_attempt(3),
        )
    )
    async def call(self, ev: StartEvent) -> StopEvent:
        type(self).attempts += 1
        if type(self).attempts < 3:
            raise ConnectionError("flaky")
        return StopEvent(result=type(self).attempts)


async def test_a_composed_retry_policy_on_a_step() -> None:
    Flaky.attempts = 0
    assert await Flaky().run() == 3


class Slow(Workflow):
    @step
    async def nap(self, ev: StartEvent) -> StopEvent:
        await asyncio.sleep(5)
        return StopEvent()


async def test_a_run_past_its_timeout_raises_workflow_timeout_error() -> None:
    with pytest.raises(WorkflowTimeoutError):
        await Slow(timeout=0.05).run()


class Answer(StopEvent):
    value: int


class Typed(Workflow):
    @step
    async def go(self, ev: StartEvent) -> Answer:
        return Answer(value=42)


async def test_a_stop_event_subclass_is_the_result() -> None:
    result = await Typed().run()
    assert isinstance(result, Answer) and result.value == 42


def test_an_invalid_workflow_raises_workflow_validation_error() -> None:
    with pytest.raises(WorkflowValidationError):

        class Dangling(Workflow):
            @step
            async def go(self, ev: StartEvent) -> JokeEvent:  # nobody takes JokeEvent
                return JokeEvent(joke="x")

            @step
            async def end(self, ev: Progress) -> StopEvent:
                return StopEvent()

        Dangling().validate()


async def test_the_test_runner() -> None:
    outcome = await WorkflowTestRunner(Streaming()).run(start_event=StartEvent())
    assert outcome.result == "done" and outcome.event_types[Progress] == 3


def test_an_event_reads_like_a_dict() -> None:
    ev = StartEvent(topic="cats", n=2)
    assert dict(ev.items()) == {"topic": "cats", "n": 2} == ev.to_dict()
    assert len(ev) == 2 and list(ev) == ["topic", "n"] and ev.get("missing") is None
