"""``ctx.store.get`` hands out the stored object: a change made to it in place is the store's,
recorded when the step ends, checkpointed, resumed and replayed like a ``set``. A checkpoint
still costs what the steps touched: a value no step read is never encoded again."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from notebook_workflows import (
    Context,
    ContextSerdeError,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.checkpoint import MemoryStore


class Next(Event):
    pass


class Grow(Workflow):
    """``grow`` appends to ``items`` in place; ``idle`` touches nothing."""

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Next:
        await ctx.store.set("items", [])
        await ctx.store.set("big", {"k": list(range(100))})
        return Next()

    @step
    async def grow(self, ctx: Context, ev: Next) -> StopEvent:
        items = await ctx.store.get("items")
        items.append(1)
        items.append(2)
        return StopEvent(result=len(await ctx.store.get("items")))


async def test_a_change_in_place_reaches_the_checkpoint_of_the_step_that_made_it() -> None:
    store = MemoryStore()
    handler = Grow().run(checkpoint=store)
    assert await handler == 2
    by_step = {s.step: s for s in store.history(handler.run_id) if s.step}
    assert by_step["grow"].context["store"]["items"] == [1, 2]
    assert by_step["begin"].context["store"]["items"] == []


async def test_a_value_no_step_touched_is_not_in_a_later_delta() -> None:
    store = MemoryStore()
    handler = Grow().run(checkpoint=store)
    await handler
    records = store._records(handler.run_id, 0, 10**6)
    grow = [r for r in records if r.step == "grow"]
    assert grow and all('"big"' not in r.data for r in grow)  # begin's record has it
    assert any('"big"' in r.data for r in records if r.step == "begin")


class Spoil(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("cfg", {"a": 1})
        cfg = await ctx.store.get("cfg")
        cfg["conn"] = object()  # cannot be saved
        return StopEvent(result="done")


async def test_a_value_changed_into_something_unsaveable_fails_its_step_naming_the_key() -> None:
    with pytest.raises(ContextSerdeError, match=r"cfg\.conn") as caught:
        await Spoil().run()
    assert "in step 'begin'" in "".join(getattr(caught.value, "__notes__", ()))


class Edit(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await ctx.store.set("items", [1])
        try:
            async with ctx.store.edit_state() as state:
                state["items"].append(2)
                raise RuntimeError("changed my mind")
        except RuntimeError:
            pass
        return StopEvent(result=await ctx.store.get("items"))


async def test_an_edit_state_block_that_raises_still_changes_nothing() -> None:
    assert await Edit().run() == [1]


class Memory(BaseModel):
    messages: list[str] = Field(default_factory=list)
    tokenizer: Any = Field(default=len, exclude=True)  # a function: left out, as pydantic does


class Chat(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> StopEvent:
        memory = await ctx.store.get("memory", default=None)
        if memory is None:
            memory = Memory()
            await ctx.store.set("memory", memory)
        memory.messages.append(ev.msg)
        return StopEvent(result=list(memory.messages))


async def test_a_model_with_an_excluded_field_is_stored_and_restored_with_its_default() -> None:
    first = Chat().run(msg="hi")
    assert await first == ["hi"]
    data = first.ctx.to_dict()
    assert "tokenizer" not in data["store"]["memory"]["fields"]
    restored = Context.from_dict(Chat(), data)
    again = Chat().run(ctx=restored, msg="again")
    assert await again == ["hi", "again"]
    assert (await again.ctx.store.get("memory")).tokenizer is len


class Reads(Workflow):
    """``decide`` reads ``mode`` from the store; its output depends on it, not on its event.
    ``begin`` always runs (``replay=False``) and stores the class's ``mode`` of the moment."""

    mode = "fast"
    calls: list[str] = []

    @step(replay=False)
    async def begin(self, ctx: Context, ev: StartEvent) -> Next:
        await ctx.store.set("mode", Reads.mode)
        return Next()

    @step
    async def decide(self, ctx: Context, ev: Next) -> StopEvent:
        mode = await ctx.store.get("mode")
        Reads.calls.append(mode)
        return StopEvent(result=f"decided {mode}")


async def test_a_rerun_replays_a_call_only_if_the_store_values_it_read_are_the_same() -> None:
    store = MemoryStore()
    handler = Reads().run(checkpoint=store)
    assert await handler == "decided fast"
    Reads.calls.clear()
    assert await Reads().rerun(handler.run_id, store=store) == "decided fast"
    assert Reads.calls == []  # what decide read is the same: replayed
    Reads.mode = "slow"
    try:
        assert await Reads().rerun(handler.run_id, store=store) == "decided slow"
    finally:
        Reads.mode = "fast"
    assert Reads.calls == ["slow"]  # decide's event is the same, what it read is not
