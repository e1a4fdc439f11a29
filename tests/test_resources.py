"""Resource injection: factories sync or async, made once per workflow instance."""

from __future__ import annotations

from typing import Annotated

from notebook_workflows import Event, Resource, StartEvent, StopEvent, Workflow, step

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
