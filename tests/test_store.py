"""ctx.store: async-safe values, copied on read, refused at set when unserializable."""

from __future__ import annotations

import asyncio
import socket

import pytest
from pydantic import BaseModel

from notebook_workflows import (
    Context,
    ContextSerdeError,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)


class Probe(Workflow):
    """Runs the test's coroutine inside a step, with the step's context."""

    def __init__(self, body) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.body = body

    @step
    async def only(self, ctx: Context, ev: StartEvent) -> StopEvent:
        return StopEvent(result=await self.body(ctx))


async def test_set_get_delete() -> None:
    async def body(ctx: Context) -> object:
        await ctx.store.set("n", 1)
        assert await ctx.store.get("n") == 1
        await ctx.store.delete("n")
        return await ctx.store.get("n", default="gone")

    assert await Probe(body).run() == "gone"


async def test_missing_key_without_default_raises_key_error_naming_it() -> None:
    async def body(ctx: Context) -> object:
        await ctx.store.set("present", 1)
        with pytest.raises(KeyError, match="no key 'absent'.*keys: present"):
            await ctx.store.get("absent")
        return True

    assert await Probe(body).run()


async def test_get_returns_the_stored_object_so_a_change_in_place_is_stored() -> None:
    async def body(ctx: Context) -> object:
        await ctx.store.set("ids", [1])
        ids = await ctx.store.get("ids")
        ids.append(2)
        assert await ctx.store.get("ids") is ids
        return await ctx.store.get("ids")

    handler = Probe(body).run()
    assert await handler == [1, 2]
    assert handler.ctx.to_dict()["store"]["ids"] == [1, 2]


async def test_set_stores_the_object_itself_as_the_peer_does() -> None:
    async def body(ctx: Context) -> object:
        value = {"a": [1]}
        await ctx.store.set("v", value)
        value["a"].append(2)
        return await ctx.store.get("v")

    handler = Probe(body).run()
    assert await handler == {"a": [1, 2]}
    assert handler.ctx.to_dict()["store"]["v"] == {"a": [1, 2]}


async def test_dotted_keys_reach_into_nested_mappings() -> None:
    async def body(ctx: Context) -> object:
        await ctx.store.set("cfg.retries", 3)
        await ctx.store.set("cfg.db.host", "localhost")
        assert await ctx.store.get("cfg") == {"retries": 3, "db": {"host": "localhost"}}
        assert await ctx.store.get("cfg.db.host") == "localhost"
        assert await ctx.store.get("cfg.db.port", default=5432) == 5432
        await ctx.store.delete("cfg.retries")
        return await ctx.store.get("cfg")

    assert await Probe(body).run() == {"db": {"host": "localhost"}}


async def test_an_unserializable_value_is_refused_at_set_and_the_old_value_kept() -> None:
    async def body(ctx: Context) -> object:
        await ctx.store.set("cfg", {"inner": [1]})
        with (
            socket.socket() as sock,
            pytest.raises(ContextSerdeError, match=r"cfg\.inner\[0\].*socket"),
        ):
            await ctx.store.set("cfg", {"inner": [sock]})
        return await ctx.store.get("cfg")

    assert await Probe(body).run() == {"inner": [1]}


async def test_edit_state_is_atomic_under_concurrent_steps() -> None:
    async def body(ctx: Context) -> object:
        await ctx.store.set("count", 0)

        async def bump() -> None:
            async with ctx.store.edit_state() as state:
                current = state["count"]
                await asyncio.sleep(0)  # another bump runs here; it must wait
                state["count"] = current + 1

        await asyncio.gather(*(bump() for _ in range(20)))
        return await ctx.store.get("count")

    assert await Probe(body).run() == 20


async def test_edit_state_keeps_in_place_changes_and_rolls_back_on_error() -> None:
    async def body(ctx: Context) -> object:
        await ctx.store.set("items", [1])
        async with ctx.store.edit_state() as state:
            state["items"].append(2)
            state.extra = "x"
        with pytest.raises(RuntimeError):
            async with ctx.store.edit_state() as state:
                state["items"] = []
                raise RuntimeError("boom")
        return await ctx.store.get("items"), await ctx.store.get("extra")

    assert await Probe(body).run() == ([1, 2], "x")


async def test_set_inside_edit_state_does_not_deadlock() -> None:
    async def body(ctx: Context) -> object:
        async with ctx.store.edit_state() as state:
            state["a"] = 1
            await ctx.store.set("b", 2)
        return await ctx.store.get("a"), await ctx.store.get("b")

    assert await Probe(body).run() == (1, 2)


class Counts(BaseModel):
    seen: int = 0
    names: list[str] = []


class Typed(Workflow):
    @step
    async def only(self, ctx: Context[Counts], ev: StartEvent) -> StopEvent:
        await ctx.store.set("seen", "3")  # validated and coerced by the model
        async with ctx.store.edit_state() as state:
            state.names.append("ada")
            state.seen += 1
        with pytest.raises(KeyError, match="Counts has no field 'nope'"):
            await ctx.store.set("nope", 1)
        with pytest.raises(ValueError):
            await ctx.store.set("seen", "many")
        return StopEvent(result=ctx.store.state)


async def test_typed_state_validates_against_the_model() -> None:
    result = await Typed().run()
    assert result == Counts(seen=4, names=["ada"])


async def test_store_outlives_the_run_on_the_handler() -> None:
    async def body(ctx: Context) -> object:
        await ctx.store.set("answer", 42)
        return None

    handler = Probe(body).run()
    await handler
    assert await handler.ctx.store.get("answer") == 42
