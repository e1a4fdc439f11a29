"""Workflows shared by tests that restore snapshots, possibly in another process: snapshots
find classes by module and name, so these live in an importable module."""

from __future__ import annotations

from notebook_workflows import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)


class Doc(Event):
    id: int


class Converted(Event):
    id: int


class Pause(Event):
    """Sent to ask the test to take a snapshot (the step stops the run right after)."""


class Pipeline(Workflow):
    """Fans documents out, converts them, joins them; records every conversion it does."""

    converted: list[int] = []
    snapshots: list[dict] = []
    stop_after: int | None = None

    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Doc | None:
        await ctx.store.set("ids", tuple(ev.ids))
        for i in ev.ids:
            ctx.send_event(Doc(id=i))
        return None

    @step
    async def convert(self, ctx: Context, ev: Doc) -> Converted:
        type(self).converted.append(ev.id)
        async with ctx.store.edit_state() as state:
            state["done"] = {*state.get("done", set()), ev.id}
        if type(self).stop_after is not None and len(type(self).converted) == self.stop_after:
            type(self).snapshots.append(ctx.to_dict())  # taken inside the step: it is in flight
        return Converted(id=ev.id)

    @step
    async def join(self, ctx: Context, ev: Converted) -> StopEvent | None:
        ids = await ctx.store.get("ids")
        got = ctx.collect_events(ev, [Converted] * len(ids))
        if got is None:
            return None
        return StopEvent(result=sorted(c.id for c in got))


class Approval(Workflow):
    asked = 0

    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        type(self).asked += 1
        await ctx.store.set("topic", ev.topic)
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix=f"Approve {ev.topic}?")
        )
        return StopEvent(result=f"{ev.topic}: {answer.response}")


class Ask(Workflow):
    """One step that waits for a human's answer and returns it."""

    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Go?")
        )
        return StopEvent(result=answer.response)
