"""Resource injection: factories sync or async, made once per workflow instance and event loop,
factories that need resources themselves, and cycles refused by name."""

from __future__ import annotations

import asyncio
from typing import Annotated

import pytest

from notebook_workflows import Event, Resource, StartEvent, StopEvent, Workflow, step
from notebook_workflows.errors import WorkflowConfigurationError
from notebook_workflows.resources import ResourceManager

made: list[str] = []


class Client:
    def __init__(self, name: str) -> None:
        self.name = name


def make_client() -> Client:
    made.append("sync")
    return Client("sync")


async def make_async_client() -> Client:
    made.append("async")
    return Client("async")


def make_fresh() -> Client:
    made.append("fresh")
    return Client("fresh")


class Next(Event):
    pass


class Uses(Workflow):
    @step
    async def first(self, ev: StartEvent, client: Annotated[Client, Resource(make_client)]) -> Next:
        return Next(seen=[client.name, id(client)])

    @step
    def second(
        self,
        ev: Next,
        client: Annotated[Client, Resource(make_client)],
        other: Annotated[Client, Resource(make_async_client)],
        fresh: Annotated[Client, Resource(make_fresh, cache=False)],
    ) -> StopEvent:
        return StopEvent(result=(ev.seen, id(client), other.name, fresh.name))


async def test_resources_are_injected_and_shared_by_factory_within_an_instance() -> None:
    made.clear()
    workflow = Uses()
    (name, first_id), second_id, other, fresh = await workflow.run()
    assert name == "sync" and first_id == second_id
    assert other == "async" and fresh == "fresh"
    await workflow.run()
    assert made.count("sync") == 1 and made.count("async") == 1
    assert made.count("fresh") == 2  # cache=False: made for every use


async def test_each_workflow_instance_has_its_own_resources() -> None:
    made.clear()
    await Uses().run()
    await Uses().run()
    assert made.count("sync") == 2


# -- resources that need resources ------------------------------------------------------------


class Settings:
    def __init__(self, url: str) -> None:
        self.url = url


class Db:
    def __init__(self, settings: Settings, client: Client) -> None:
        self.settings = settings
        self.client = client


def get_settings() -> Settings:
    made.append("settings")
    return Settings("sqlite://")


async def get_db(
    settings: Annotated[Settings, Resource(get_settings)],
    client: Annotated[Client, Resource(make_async_client)],
) -> Db:
    made.append("db")
    return Db(settings, client)


class UsesDb(Workflow):
    @step
    async def first(self, ev: StartEvent, db: Annotated[Db, Resource(get_db)]) -> Next:
        return Next(db=id(db))

    @step
    async def second(
        self,
        ev: Next,
        db: Annotated[Db, Resource(get_db)],
        settings: Annotated[Settings, Resource(get_settings)],
    ) -> StopEvent:
        return StopEvent(result=(ev.db == id(db), db.settings is settings, db.settings.url))


async def test_a_factory_gets_its_own_resources_made_first_and_shared() -> None:
    made.clear()
    same_db, same_settings, url = await UsesDb().run()
    assert same_db and same_settings and url == "sqlite://"
    assert made.count("settings") == 1 and made.count("db") == 1 and made.count("async") == 1


def get_a(b: Annotated[object, Resource(lambda: None)]) -> object:  # replaced below
    return b


def get_b(a: Annotated[object, Resource(get_a)]) -> object:
    return a


def get_a_again(b: Annotated[object, Resource(get_b)]) -> object:
    return b


def get_self(me: Annotated[object, Resource(lambda: None)]) -> object:
    return me


# Close the loops: get_a needs get_b, which needs get_a; get_self needs itself.
get_a.__annotations__["b"] = Annotated[object, Resource(get_b)]
get_self.__annotations__["me"] = Annotated[object, Resource(get_self)]


class Cycle(Workflow):
    @step
    async def go(self, ev: StartEvent, a: Annotated[object, Resource(get_a_again)]) -> StopEvent:
        return StopEvent(result=a)


async def test_a_cycle_of_resources_is_refused_naming_it() -> None:
    with pytest.raises(WorkflowConfigurationError) as info:
        await Cycle().run()
    message = str(info.value)
    assert "get_b -> get_a -> get_b" in message
    assert "step 'go'" in info.value.__notes__[0]


async def test_a_resource_needing_itself_is_a_cycle() -> None:
    with pytest.raises(WorkflowConfigurationError, match="get_self -> get_self"):
        await ResourceManager().get(Resource(get_self))


def needs_url(url: str) -> Settings:
    return Settings(url)


async def test_a_factory_parameter_that_is_not_a_resource_is_named() -> None:
    with pytest.raises(WorkflowConfigurationError, match="needs_url .* parameter 'url'"):
        await ResourceManager().get(Resource(needs_url))


fresh_calls: list[int] = []


def get_counter() -> int:
    fresh_calls.append(1)
    return len(fresh_calls)


def left(n: Annotated[int, Resource(get_counter, cache=False)]) -> int:
    return n


def right(n: Annotated[int, Resource(get_counter, cache=False)]) -> int:
    return n


async def test_an_uncached_dependency_is_made_once_per_resolution() -> None:
    fresh_calls.clear()
    manager = ResourceManager()
    a, b = await manager.resolve([Resource(left, cache=False), Resource(right, cache=False)])
    assert a == b == 1
    assert await manager.get(Resource(left, cache=False)) == 2


async def test_set_gives_the_value_for_a_resource_name() -> None:
    manager = ResourceManager()
    stand_in = Settings("memory://")
    await manager.set("get_settings", stand_in)
    assert await manager.get(Resource(get_settings)) is stand_in
    db = await manager.get(Resource(get_db))
    assert db.settings is stand_in
    assert manager.get_all()["get_db"] is db


async def test_two_steps_asking_at_once_share_one_factory_call() -> None:
    calls: list[int] = []

    async def slow() -> Client:
        calls.append(1)
        await asyncio.sleep(0.01)
        return Client("slow")

    manager = ResourceManager()
    first, second = await asyncio.gather(manager.get(Resource(slow)), manager.get(Resource(slow)))
    assert first is second and calls == [1]


# -- event loops (issue 11) ------------------------------------------------------------------


class LoopBound:
    """Holds a queue that binds to the loop it first waits on, like an async client does."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int] = asyncio.Queue()

    async def roundtrip(self, value: int) -> int:
        asyncio.get_running_loop().call_soon(self.queue.put_nowait, value)
        return await self.queue.get()  # waits, so the queue binds to this loop


async def make_loop_bound() -> LoopBound:
    made.append("loop-bound")
    return LoopBound()


def make_loop_bound_sync() -> LoopBound:
    made.append("loop-bound-sync")
    return LoopBound()


class UsesLoopBound(Workflow):
    @step
    async def go(
        self,
        ev: StartEvent,
        bound: Annotated[LoopBound, Resource(make_loop_bound)],
        bound_sync: Annotated[LoopBound, Resource(make_loop_bound_sync)],
    ) -> StopEvent:
        return StopEvent(result=await bound.roundtrip(ev.n) + await bound_sync.roundtrip(ev.n))


def test_run_sync_twice_remakes_loop_bound_resources_for_the_new_loop() -> None:
    made.clear()
    workflow = UsesLoopBound()
    assert workflow.run_sync(n=1) == 2  # a script: each run_sync runs on a new loop
    assert workflow.run_sync(n=2) == 4
    assert made.count("loop-bound") == 2 and made.count("loop-bound-sync") == 2


async def test_runs_on_one_loop_share_loop_bound_resources() -> None:
    made.clear()
    workflow = UsesLoopBound()
    await workflow.run(n=1)
    await workflow.run(n=2)
    assert made.count("loop-bound") == 1 and made.count("loop-bound-sync") == 1


def test_values_of_a_closed_loop_are_dropped_when_a_new_loop_comes() -> None:
    manager = ResourceManager()
    asyncio.run(manager.get(Resource(make_loop_bound)))
    asyncio.run(manager.get(Resource(make_loop_bound)))
    assert len(manager._by_loop) == 1


def test_the_peer_module_path_gives_the_same_objects() -> None:
    from notebook_workflows import resource

    assert resource.Resource is Resource and resource.ResourceManager is ResourceManager
