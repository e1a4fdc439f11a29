"""Several event parameters on one step (llama-index-workflows 2.22+): the step runs once one
event of each parameter's type has arrived, each parameter matched by its type, the oldest
first; a half-filled join survives a snapshot."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from notebook_workflows import (
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowValidationError,
    step,
)


class AEvent(Event):
    result: str


class BEvent(Event):
    result: str


class CEvent(Event):
    result: str


class Assemble(Workflow):
    @step
    async def step_a(self, ev: StartEvent) -> AEvent:
        return AEvent(result="Query 1")

    @step
    async def step_b(self, ev: StartEvent) -> BEvent:
        return BEvent(result="Query 2")

    @step
    async def step_c(self, ev: StartEvent) -> CEvent:
        return CEvent(result="Query 3")

    @step
    async def assemble(self, ctx: Context, a: AEvent, b: BEvent, c: CEvent) -> StopEvent:
        return StopEvent(result=[a.result, b.result, c.result])


async def test_the_step_runs_once_all_its_parameters_have_an_event() -> None:
    handler = Assemble().run()
    assert await handler == ["Query 1", "Query 2", "Query 3"]
    view = handler.ctx._state
    assert view.step_runs["assemble"] == 1
    flow = view.flow()
    assert flow[("AEvent", "assemble")] == flow[("CEvent", "assemble")] == 1
    assert not any(name == "Gathered" for edge in flow for name in edge)


class Pairs(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> AEvent | BEvent | None:
        for i in range(3):
            ctx.send_event(AEvent(result=f"a{i}"))
        for i in range(2):
            ctx.send_event(BEvent(result=f"b{i}"))
        return None

    @step
    async def pair(self, ctx: Context, b: BEvent, a: AEvent) -> StopEvent | None:
        pairs = await ctx.store.get("pairs", default=[])
        pairs.append((a.result, b.result))
        await ctx.store.set("pairs", pairs)
        return StopEvent(result=pairs) if len(pairs) == 2 else None


async def test_arrivals_pair_up_oldest_first_and_the_rest_waits() -> None:
    handler = Pairs().run()
    assert await handler == [("a0", "b0"), ("a1", "b1")]


class HalfWay(Workflow):
    snapshot: ClassVar[dict[str, Any] | None] = None

    @step
    async def begin(self, ev: StartEvent) -> AEvent:
        return AEvent(result="first")

    @step
    async def late(self, ctx: Context, ev: AEvent) -> BEvent:
        HalfWay.snapshot = json.loads(json.dumps(ctx.to_dict()))
        return BEvent(result="second")

    @step
    async def both(self, a: AEvent, b: BEvent) -> StopEvent:
        return StopEvent(result=a.result + "+" + b.result)


async def test_a_half_filled_join_survives_a_snapshot() -> None:
    assert await HalfWay().run() == "first+second"
    data = HalfWay.snapshot
    assert data is not None
    assert [item["event"]["data"]["result"] for item in data["collected"]["both#join"]] == ["first"]
    workflow = HalfWay()
    assert await workflow.run(ctx=Context.from_dict(workflow, data)) == "first+second"


def test_each_parameter_takes_one_event_type() -> None:
    with pytest.raises(WorkflowValidationError, match=r"parameter 'b' of a step with several"):

        class Wrong(Workflow):
            @step
            async def both(self, a: AEvent, b: BEvent | CEvent) -> StopEvent:
                return StopEvent()


def test_the_graph_shows_each_parameter_as_an_input_of_the_step() -> None:
    source = Assemble().draw().source
    for name in ("AEvent", "BEvent", "CEvent"):
        assert f'"event:{__name__}.{name}" -> "step:assemble"' in source
    assert "joins a: AEvent, b: BEvent, c: CEvent" in source
