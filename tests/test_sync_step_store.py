"""A sync step uses ``ctx.store`` with plain calls, wherever it runs.

A ``def`` step cannot ``await``: on the run's thread pool its ``ctx.store.get``/``set`` used to
return coroutines that never ran (the write silently lost), while on a process pool or a Dask
cluster the same calls were plain. Now they are plain in both places (``store.ThreadStore``),
carried out on the run's loop in turn with every other change of the store; async steps still
await them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
from helpers import until
from pydantic import BaseModel, ValidationError

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.errors import ContextSerdeError, WorkflowRuntimeError
from notebook_workflows.store import Store, ThreadStore


class Tally(Workflow):
    """Every store call a sync step makes, with plain calls."""

    @step
    def tally(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.store.set("count", 1)
        ctx.store.set("cfg", {"retries": 1})
        ctx.store.set("cfg.model", "small")
        ctx.store.set("count", ctx.store.get("count") + 1)
        ctx.store.set("gone", True)
        ctx.store.delete("gone")
        missing = ctx.store.get("gone", "default")
        return StopEvent(result={"state": ctx.store.get_state(), "missing": missing})


EXPECTED = {"state": {"count": 2, "cfg": {"retries": 1, "model": "small"}}, "missing": "default"}


async def test_a_sync_step_on_the_thread_pool_uses_the_store_with_plain_calls():
    ctx = Context(Tally())
    assert await Tally().run(ctx=ctx) == EXPECTED
    assert await ctx.store.get("count") == 2  # the run's store holds the writes


async def test_the_same_sync_step_gives_the_same_result_on_a_process_pool():
    with ProcessPoolExecutor(1) as pool:
        assert await Tally(executor=pool).run() == EXPECTED
    assert await Tally().run() == EXPECTED


class Refused(Workflow):
    @step
    def keep(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.store.set("ok", 1)
        ctx.store.set("handle", threading.Lock())  # cannot be saved
        return StopEvent(result="unreachable")


async def test_a_refused_value_raises_in_the_sync_step_naming_the_key():
    ctx = Context(Refused())
    with pytest.raises(ContextSerdeError, match="handle"):
        await Refused().run(ctx=ctx)
    assert await ctx.store.get("ok") == 1
    assert ctx.store.keys() == ["ok"]


class Shard(Event):
    i: int


class Written(Event):
    pass


class Parallel(Workflow):
    """Eight sync steps at once, each writing its own part of one dict."""

    @step
    async def fan(self, ctx: Context, ev: StartEvent) -> Shard | None:
        await ctx.store.set("parts", {})
        for i in range(8):
            ctx.send_event(Shard(i=i))
        return None

    @step(num_workers=8)
    def work(self, ctx: Context, ev: Shard) -> Written:
        time.sleep(0.01)
        ctx.store.set(f"parts.p{ev.i}", ev.i * ev.i)
        return Written()

    @step
    async def join(self, ctx: Context, ev: Written) -> StopEvent | None:
        if ctx.collect_events(ev, [Written] * 8) is None:
            return None
        return StopEvent(result=await ctx.store.get("parts"))


async def test_sync_steps_writing_in_parallel_lose_no_write():
    assert await Parallel().run() == {f"p{i}": i * i for i in range(8)}


class Go(Event):
    pass


class Held(Event):
    pass


class Wrote(Event):
    pass


class Editing(Workflow):
    """An async step holds ``edit_state`` across an await while a sync step sets the same key:
    the sync step's write waits for the block to end, so the block does not overwrite it."""

    writing = threading.Event()  # the sync step is about to write

    @step
    async def start(self, ctx: Context, ev: StartEvent) -> Held | Go:  # Go: sent
        ctx.send_event(Go())
        async with ctx.store.edit_state() as state:
            state["owner"] = "edit block"
            await until(self.writing.is_set, what="the sync step's write")
            await asyncio.sleep(0.05)  # the block stays open while the write waits for it
        return Held()

    @step
    def write(self, ctx: Context, ev: Go) -> Wrote:
        self.writing.set()  # inside the edit block, which waits for this
        ctx.store.set("owner", "sync step")
        return Wrote()

    @step
    async def finish(self, ctx: Context, ev: Held | Wrote) -> StopEvent | None:
        if ctx.collect_events(ev, [Held, Wrote]) is None:
            return None
        return StopEvent(result=await ctx.store.get("owner"))


async def test_a_sync_step_write_waits_for_an_edit_block_on_the_loop():
    Editing.writing.clear()
    assert await Editing().run() == "sync step"


class Counted(BaseModel):
    n: int = 0
    label: str = ""


class Typed(Workflow):
    @step
    def bump(self, ctx: Context[Counted], ev: StartEvent) -> StopEvent:
        ctx.store.set("n", ctx.store.get("n") + 5)
        with pytest.raises(ValidationError, match="n"):
            ctx.store.set("n", "five")  # the typed state validates the field
        state = ctx.store.get_state()
        ctx.store.set_state(Counted(n=state.n + 1, label="set whole"))
        return StopEvent(result=ctx.store.get_state())


async def test_a_typed_state_from_a_sync_step():
    result = await Typed().run()
    assert result == Counted(n=6, label="set whole")


class Recorded(Workflow):
    @step
    def write(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.store.set("written", "by a sync step")
        return StopEvent(result="done")


async def test_a_sync_step_write_is_in_its_checkpoint_and_in_its_call_record():
    store = MemoryStore()
    handler = Recorded().run(checkpoint=store)
    await handler
    history = store.history(handler.ctx.run_id)
    after = next(s for s in history if s.step == "write")
    assert after.context["store"]["written"] == "by a sync step"
    (call,) = after.calls
    assert call["set"] == {"written": "by a sync step"} or call.get("same") == ["written"]


async def test_edit_state_in_a_sync_step_says_to_use_an_async_step():
    class EditsInDef(Workflow):
        @step
        def edit(self, ctx: Context, ev: StartEvent) -> StopEvent:
            with ctx.store.edit_state():
                pass
            return StopEvent()

    with pytest.raises(WorkflowRuntimeError, match="async step"):
        await EditsInDef().run()


async def test_async_code_still_awaits_the_store():
    ctx = Context(Recorded())
    pending = ctx.store.set("a", 1)
    assert asyncio.iscoroutine(pending)
    await pending
    assert await ctx.store.get("a") == 1


class Saves(Workflow):
    @step
    def save(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.store.set("k", [1, 2])
        return StopEvent(result=ctx.to_dict())


async def test_a_sync_step_can_save_its_context():
    data = await Saves().run()
    assert data["store"]["k"] == [1, 2]
    restored = Context.from_dict(Saves(), data)
    assert await restored.store.get("k") == [1, 2]


def test_a_step_still_running_after_its_loop_closed_gets_a_clear_error():
    loop = asyncio.new_event_loop()
    loop.close()
    store = ThreadStore(Store(), loop)
    with pytest.raises(WorkflowRuntimeError, match="has ended"):
        store.set("k", 1)
