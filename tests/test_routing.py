"""Events go to every step that accepts their exact type; send_event can target one step."""

from __future__ import annotations

import pytest

from notebook_workflows import (
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)


class Ping(Event):
    n: int = 0


class SubPing(Ping):
    pass


class Done(Event):
    who: str


async def test_an_event_reaches_every_step_that_accepts_its_type() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> Ping:
            return Ping()

        @step
        async def left(self, ev: Ping) -> Done:
            return Done(who="left")

        @step
        async def right(self, ev: Ping) -> Done:
            return Done(who="right")

        @step
        async def join(self, ctx: Context, ev: Done) -> StopEvent | None:
            got = ctx.collect_events(ev, [Done, Done])
            return None if got is None else StopEvent(result=sorted(e.who for e in got))

    assert await Flow().run() == ["left", "right"]


async def test_routing_is_by_exact_type_not_subclass() -> None:
    seen = []

    class Flow(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> SubPing:
            return SubPing()

        @step
        async def base(self, ev: Ping) -> StopEvent:
            seen.append("base")
            return StopEvent()

        @step
        async def sub(self, ev: SubPing) -> Ping:
            seen.append("sub")
            return Ping()

    await Flow().run()
    assert seen == ["sub", "base"]


async def test_send_event_to_a_named_step_only() -> None:
    seen = []

    class Flow(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> Ping | None:
            ctx.send_event(Ping(n=1), step="b")
            return None

        @step
        async def a(self, ev: Ping) -> StopEvent:
            seen.append("a")
            return StopEvent()

        @step
        async def b(self, ev: Ping) -> StopEvent:
            seen.append("b")
            return StopEvent(result=ev.n)

    assert await Flow().run() == 1
    assert seen == ["b"]


async def test_send_event_to_a_step_that_does_not_accept_it_fails_the_step() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> Ping | None:
            ctx.send_event(Done(who="x"), step="a")
            return None

        @step
        async def a(self, ev: Ping) -> Done:
            return Done(who="a")

        @step
        async def end(self, ev: Done) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowRuntimeError, match="step 'a' does not accept Done"):
        await Flow().run()


async def test_returning_something_that_is_not_an_event_names_the_step() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> StopEvent:
            return 42  # type: ignore[return-value]

    with pytest.raises(WorkflowRuntimeError, match=r"step 'begin' returned 42 \(int\)"):
        await Flow().run()


async def test_returning_an_undeclared_event_type_names_the_step_and_type() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> Ping:
            return Done(who="x")  # type: ignore[return-value]

        @step
        async def end(self, ev: Ping) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowRuntimeError, match="step 'begin' returned Done, which its return"):
        await Flow().run()


async def test_sending_an_event_nobody_accepts_names_the_type_and_sender() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> StopEvent:
            ctx.send_event(Done(who="x"))
            return StopEvent()

    with pytest.raises(
        WorkflowRuntimeError, match=r"no step accepts Done \(sent by step 'begin'\)"
    ):
        await Flow().run()


async def test_a_returned_stop_event_subclass_with_fields_is_the_result() -> None:
    class Finished(StopEvent):
        total: int

    class Flow(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> Finished:
            return Finished(total=3)

    result = await Flow().run()
    assert isinstance(result, Finished) and result.total == 3
