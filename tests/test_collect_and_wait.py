"""collect_events gathers a fan-in; wait_for_event suspends a step where it awaits."""

from __future__ import annotations

import asyncio

import pytest
from helpers import waiting

from notebook_workflows import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowTimeoutError,
    step,
)


class Work(Event):
    i: int


class Res(Event):
    v: int


class Other(Event):
    tag: str


class Reply(Event):
    to: str
    text: str


class Fan(Workflow):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Work | None:
        for i in range(self.width):
            ctx.send_event(Work(i=i))
        return None

    @step(num_workers=50)
    async def work(self, ev: Work) -> Res:
        await asyncio.sleep(0.001 * (self.width - ev.i) / self.width)
        return Res(v=ev.i)

    @step
    async def gather(self, ctx: Context, ev: Res) -> StopEvent | None:
        got = ctx.collect_events(ev, [Res] * self.width)
        if got is None:
            return None
        return StopEvent(result=[e.v for e in got])


async def test_collect_returns_none_until_every_expected_event_arrived() -> None:
    result = await Fan(20).run()
    assert sorted(result) == list(range(20))


async def test_collect_returns_events_in_the_order_of_the_expected_types() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> Res | Other | None:
            ctx.send_event(Res(v=1))
            ctx.send_event(Other(tag="x"))
            return None

        @step
        async def join(self, ctx: Context, ev: Res | Other) -> StopEvent | None:
            got = ctx.collect_events(ev, [Other, Res])
            return None if got is None else StopEvent(result=[type(e).__name__ for e in got])

    assert await Flow().run() == ["Other", "Res"]


class Stuck(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Res:
        return Res(v=1)

    @step
    async def join(self, ctx: Context, ev: Res) -> StopEvent | None:
        got = ctx.collect_events(ev, [Res, Res])
        return None if got is None else StopEvent(result=sum(r.v for r in got))


async def test_a_stalled_run_waits_for_an_event_from_outside_saying_what_holds_it() -> None:
    handler = Stuck().run()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(handler), 0.2)
    view = handler.view()
    assert view.status == "running"
    assert "step 'join' has collected 1 x Res and is still waiting for more" in view.stalled
    handler.ctx.send_event(Res(v=2))  # what a task the step left behind would do
    assert await handler == 3
    assert handler.view().stalled == ""


async def test_a_stalled_run_past_its_timeout_fails_saying_what_held_it() -> None:
    with pytest.raises(WorkflowTimeoutError, match=r"stalled.*'join' has collected 1 x Res"):
        await Stuck(timeout=0.2).run()


class Asker(Workflow):
    entered = 0

    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        type(self).entered += 1
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Name?")
        )
        return StopEvent(result=f"hello {answer.response}")


async def test_wait_for_event_continues_where_it_awaited() -> None:
    Asker.entered = 0
    handler = Asker().run()
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            assert ev.prefix == "Name?"
            assert handler.status == "waiting"
            handler.ctx.send_event(HumanResponseEvent(response="Ada"))
    assert await handler == "hello Ada"
    assert Asker.entered == 1  # continued at the await, not replayed from the start


async def test_wait_for_event_honours_requirements() -> None:
    others = []

    class Flow(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> StopEvent | Reply:
            reply = await ctx.wait_for_event(Reply, requirements={"to": "me"})
            return StopEvent(result=reply.text)

        @step
        async def other(self, ev: Reply) -> None:
            others.append(ev.text)

    handler = Flow().run()
    await waiting(handler)  # the step waits for its reply
    handler.ctx.send_event(Reply(to="you", text="yours"))
    handler.ctx.send_event(Reply(to="me", text="mine"))
    assert await handler == "mine"
    assert others == ["yours"]


async def test_wait_for_event_timeout_fails_the_step() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> StopEvent:
            await ctx.wait_for_event(Reply, timeout=0.05)
            return StopEvent()

    with pytest.raises(WorkflowTimeoutError, match="step 'begin' waited more than 0.05 s"):
        await Flow().run()


async def test_a_returned_question_is_answered_through_the_context() -> None:
    class Flow(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="Approve?")

        @step
        async def decide(self, ev: HumanResponseEvent) -> StopEvent:
            return StopEvent(result=ev.response == "yes")

    handler = Flow().run()
    async for ev in handler.stream_events(lifecycle=False):
        if isinstance(ev, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert await handler is True
