"""Behaviour ported from llama-index-workflows' documentation, run on this engine: the stream
and its ending events, handler methods, typed state, retry info, Workflow options, free-function
steps, subclass routing, fan-out by returning a list, errors the peer raises."""

from __future__ import annotations

import asyncio

import pytest
from helpers import until, waiting
from pydantic import BaseModel

from notebook_workflows import (
    Context,
    ContextStateError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowRuntimeError,
    WorkflowStepDoesNotExistError,
    WorkflowValidationError,
    step,
)
from notebook_workflows.events import (
    StepStateChanged,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
)
from notebook_workflows.retry_policy import ConstantDelayRetryPolicy


class Progress(Event):
    msg: str


class Streams(Workflow):
    @step
    async def go(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.write_event_to_stream(Progress(msg="half"))
        if ev.get("fail"):
            raise KeyError("missing")
        if ev.get("slow"):
            await asyncio.sleep(10)
        return StopEvent(result="ok")


async def test_the_stream_yields_written_events_then_the_stop_event() -> None:
    handler = Streams().run()
    items = [type(e).__name__ async for e in handler.stream_events()]
    assert items == ["Progress", "StopEvent"]
    assert handler.is_done() and handler.get_stop_event() == StopEvent(result="ok")
    with pytest.raises(WorkflowRuntimeError, match="already been streamed"):
        [e async for e in handler.stream_events()]


async def test_a_failed_run_ends_its_stream_with_workflow_failed_event() -> None:
    handler = Streams().run(fail=True)
    items = [e async for e in handler.stream_events()]
    assert isinstance(items[-1], WorkflowFailedEvent) and items[-1].step_name == "go"
    with pytest.raises(KeyError):
        await handler


async def test_timeouts_and_cancels_end_the_stream_with_their_events() -> None:
    handler = Streams(timeout=0.1).run(slow=True)
    items = [e async for e in handler.stream_events()]
    assert isinstance(items[-1], WorkflowTimedOutEvent) and items[-1].active_steps == ["go"]
    handler = Streams().run(slow=True)
    await until(lambda: handler.view().running, what="the step running")
    await handler.cancel_run()
    assert isinstance([e async for e in handler.stream_events()][-1], WorkflowCancelledEvent)
    with pytest.raises(WorkflowCancelledByUser):
        await handler


async def test_expose_internal_adds_step_state_changes() -> None:
    handler = Streams().run()
    items = [e async for e in handler.stream_events(expose_internal=True)]
    states = [e.step_state.value for e in items if isinstance(e, StepStateChanged)]
    assert states == ["running", "not_running"]


class Counts(BaseModel):
    n: int = 0


class Base(Workflow):
    @step
    async def go(self, ctx: Context[Counts], ev: StartEvent) -> StopEvent:
        state = await ctx.store.get_state()
        state.n += 1
        await ctx.store.set_state(state)
        async with ctx.store.edit_state() as edited:
            edited.n += 1
        return StopEvent(result=(await ctx.store.get_state()).n)


class MoreCounts(Counts):
    label: str = "more"


class Child(Base):
    @step
    async def go(self, ctx: Context[MoreCounts], ev: StartEvent) -> StopEvent:
        state = await ctx.store.get_state()
        return StopEvent(result=(type(state).__name__, state.label))


async def test_typed_state_get_set_and_a_child_state_in_a_subclass() -> None:
    assert await Base().run() == 2
    assert await Child().run() == ("MoreCounts", "more")


class Flaky(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=3))
    async def go(self, ctx: Context, ev: StartEvent) -> StopEvent:
        info = ctx.retry_info()
        if info.retry_number < 2:
            raise TimeoutError(f"try {info.retry_number}")
        return StopEvent(result=(info.retry_number, str(info.last_exception)))


async def test_retry_info_tells_a_step_where_it_stands() -> None:
    assert await Flaky().run() == (2, "try 1")


async def test_context_methods_outside_a_step_raise_context_state_error() -> None:
    handler = Streams().run()
    await handler
    with pytest.raises(ContextStateError):
        handler.ctx.retry_info()


class Routed(Workflow):
    @step
    async def go(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.send_event(Progress(msg="x"), step="nowhere")
        return StopEvent()


async def test_sending_to_a_step_that_does_not_exist_names_it() -> None:
    with pytest.raises(WorkflowStepDoesNotExistError, match="nowhere"):
        await Routed().run()


class Free(Workflow):
    pass


class Picked(Event):
    n: int


@step(workflow=Free)
async def pick(ev: StartEvent) -> Picked:
    return Picked(n=ev.n)


@step(workflow=Free)
async def finish(ev: Picked) -> StopEvent:
    return StopEvent(result=ev.n * 2)


async def test_steps_defined_outside_the_class_join_it() -> None:
    assert await Free().run(n=4) == 8


class Animal(Event):
    name: str


class Dog(Animal):
    pass


class Zoo(Workflow):
    @step
    async def go(self, ev: StartEvent) -> Dog:
        return Dog(name="rex")

    @step(accept_event_subclasses=True)
    async def greet(self, ev: Animal) -> StopEvent:
        return StopEvent(result=f"{type(ev).__name__} {ev.name}")


async def test_accept_event_subclasses_routes_subclasses() -> None:
    assert await Zoo().run() == "Dog rex"


class Fans(Workflow):
    @step
    async def split(self, ev: StartEvent) -> list[Picked]:
        return [Picked(n=i) for i in range(3)]

    @step
    async def join(self, ctx: Context, ev: Picked) -> StopEvent | None:
        got = ctx.collect_events(ev, [Picked] * 3)
        return None if got is None else StopEvent(result=sorted(p.n for p in got))


async def test_a_step_returning_a_list_fans_its_events_out() -> None:
    assert await Fans().run() == [0, 1, 2]


class Unchecked(Workflow):
    @step
    async def go(self, ev: StartEvent) -> Picked | StopEvent:
        return StopEvent(result="fine")


async def test_workflow_options_of_the_peer() -> None:
    with pytest.raises(WorkflowValidationError):
        Unchecked().validate()
    assert await Unchecked(disable_validation=True).run() == "fine"
    Unchecked(skip_graph_checks={"dead_end"}).validate()
    assert Unchecked(workflow_name="custom").workflow_name == "custom"


class Limited(Workflow):
    running = 0
    most = 0

    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        type(self).running += 1
        type(self).most = max(type(self).most, type(self).running)
        await asyncio.sleep(0.02)
        type(self).running -= 1
        return StopEvent()


async def test_num_concurrent_runs_makes_further_runs_wait_their_turn() -> None:
    workflow = Limited(num_concurrent_runs=2)
    await asyncio.gather(*(workflow.run() for _ in range(5)))
    assert Limited.most == 2


class Asks(Workflow):
    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix="who?"),
            requirements={"user": "ann"},
        )
        return StopEvent(result=answer.response)


async def test_an_answer_no_waiter_wants_is_dropped_as_the_peer_does() -> None:
    handler = Asks().run()
    await waiting(handler)
    handler.ctx.send_event(HumanResponseEvent(response="wrong", user="bob"))
    handler.ctx.send_event(HumanResponseEvent(response="right", user="ann"))
    assert await handler == "right"
    assert (await handler.stop_event_result()).result == "right"


class Saver(Workflow):
    saved: dict = {}

    @step
    async def first(self, ctx: Context, ev: StartEvent) -> Picked:
        type(self).saved = ctx.to_dict()  # the seed's third strategy: a snapshot in a step
        return Picked(n=len(ev.ids))

    @step
    async def second(self, ev: Picked) -> StopEvent:
        return StopEvent(result=ev.n)


async def test_a_context_saved_in_a_step_restarts_with_the_same_input_only() -> None:
    from notebook_workflows import Context as Ctx

    assert await Saver().run(ids=[1, 2, 3]) == 3
    data = Saver.saved
    assert "ids" in data["start"]["fields"] and len(str(data["start"])) < 200  # digests
    workflow = Saver()
    assert await workflow.run(ctx=Ctx.from_dict(workflow, data), ids=[1, 2, 3]) == 3
    with pytest.raises(WorkflowRuntimeError, match=r"other input: ids=\[9\]"):
        workflow.run(ctx=Ctx.from_dict(workflow, data), ids=[9])
