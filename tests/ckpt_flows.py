"""Workflows for the checkpoint tests. Snapshots find event and workflow classes by module and
name, and the crash tests continue runs in other processes, so they live in a module."""

from __future__ import annotations

import asyncio
import os

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


def log_line(path: str, line: str) -> None:
    """Append one line; O_APPEND makes each write whole even with several processes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class Doc(Event):
    id: int


class Converted(Event):
    id: int


class Docs(Workflow):
    """Splits documents, converts them two at a time, joins them. Every conversion appends
    ``convert <id> <pid>`` to the log file, so a test can tell what ran where."""

    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Doc | None:
        await ctx.store.set("log", ev.log)
        await ctx.store.set("delay", ev.get("delay", 0.0))
        await ctx.store.set("count", len(ev.ids))
        for i in ev.ids:
            ctx.send_event(Doc(id=i))
        return None

    @step(num_workers=2)
    async def convert(self, ctx: Context, ev: Doc) -> Converted:
        delay = await ctx.store.get("delay")
        if delay:
            await asyncio.sleep(delay)
        log_line(await ctx.store.get("log"), f"convert {ev.id} {os.getpid()}")
        async with ctx.store.edit_state() as state:
            state["converted"] = sorted({*state.get("converted", []), ev.id})
        return Converted(id=ev.id)

    @step
    async def join(self, ctx: Context, ev: Converted) -> StopEvent | None:
        got = ctx.collect_events(ev, [Converted] * await ctx.store.get("count"))
        if got is None:
            return None
        return StopEvent(result=sorted(c.id for c in got))


class Tick(Event):
    i: int


class Counter(Workflow):
    """A chain of ``n`` steps, each adding one to ``counter`` and recording its number."""

    ran: list[int] = []

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Tick:
        await ctx.store.set("counter", 0)
        await ctx.store.set("n", ev.n)
        await ctx.store.set("delay", ev.get("delay", 0.0))
        return Tick(i=0)

    @step
    async def tick(self, ctx: Context, ev: Tick) -> Tick | StopEvent:
        delay = await ctx.store.get("delay")
        if delay:
            await asyncio.sleep(delay)
        type(self).ran.append(ev.i)
        async with ctx.store.edit_state() as state:
            state["counter"] += 1
            state[f"k{ev.i % 7}"] = ev.i
            if ev.i % 5 == 4:
                state.pop_me = True
            elif "pop_me" in state:
                del state["pop_me"]
        if ev.i + 1 >= await ctx.store.get("n"):
            return StopEvent(result=await ctx.store.get("counter"))
        return Tick(i=ev.i + 1)


class Approve(Workflow):
    """Prepares, then asks a human; the answer is the result."""

    prepared = 0
    asked = 0

    @step
    async def prepare(self, ctx: Context, ev: StartEvent) -> Doc:
        type(self).prepared += 1
        await ctx.store.set("draft", ev.draft)
        return Doc(id=1)

    @step
    async def ask(self, ctx: Context, ev: Doc) -> StopEvent:
        type(self).asked += 1
        draft = await ctx.store.get("draft")
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix=f"publish {draft}?")
        )
        return StopEvent(result=f"{draft}: {answer.response}")
