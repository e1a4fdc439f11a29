"""What llama-index-workflows' users and LlamaIndex's agents rely on besides the agents
themselves: a workflow that is also a pydantic model, construction-time refusal of a graph that
can never run, ``validate``'s keywords, ``Context.get_step_context()``, the serializer objects'
``serialize``/``deserialize``, ``WorkflowTestRunner``'s internal events, resources under
postponed annotations, and answers to parallel and restored waiters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel
from pydantic._internal._model_construction import ModelMetaclass

from notebook_workflows import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowConfigurationError,
    WorkflowRuntimeError,
    WorkflowValidationError,
    step,
)
from notebook_workflows.events import StepStateChanged
from notebook_workflows.resource import Resource, ResourceConfig
from notebook_workflows.serializers import JsonSerializer, PickleSerializer
from notebook_workflows.testing import WorkflowTestRunner
from notebook_workflows.workflow import WorkflowMeta


class Asked(Event):
    n: int = 0


async def test_a_workflow_that_is_also_a_pydantic_model_with_a_local_event_runs() -> None:
    class Meta(WorkflowMeta, ModelMetaclass):
        pass

    class Local(Event):  # local to this function: found through the class's namespace
        text: str

    class Agent(Workflow, BaseModel, metaclass=Meta):
        name: str = "agent"

        def __init__(self, **data: Any) -> None:
            BaseModel.__init__(self, **data)
            Workflow.__init__(self, timeout=5)

        @step
        async def begin(self, ev: StartEvent) -> Local:
            return Local(text=self.name)

        @step
        async def end(self, ev: Local) -> StopEvent:
            return StopEvent(result=ev.text)

    agent = Agent(name="bond")
    assert agent.timeout == 5 and agent.model_dump() == {"name": "bond"}
    assert await agent.run() == "bond"
    assert agent.workflow_name.endswith("Agent")


def test_a_graph_that_can_never_run_is_refused_when_the_workflow_is_made() -> None:
    class NoStop(Workflow):
        @step
        async def go(self, ev: StartEvent) -> None:
            return None

    with pytest.raises(WorkflowConfigurationError, match="no step returns a StopEvent"):
        NoStop()
    NoStop(disable_validation=True)  # as in the peer
    NoStop(skip_graph_checks={"terminal_event"})


def test_validate_takes_the_peers_keywords_and_says_whether_it_asks_humans(tmp_path: Path) -> None:
    class Settings(BaseModel):
        retries: int

    missing = tmp_path / "nope.json"

    class Configured(Workflow):
        @step
        async def go(
            self, ev: StartEvent, cfg: Annotated[Settings, ResourceConfig(str(missing))]
        ) -> StopEvent:
            return StopEvent(result=cfg.retries)

    flow = Configured()
    with pytest.raises(WorkflowValidationError, match=r"step 'go', resource 'cfg'.*nope\.json"):
        flow.validate()
    assert flow.validate(validate_resource_configs=False) is False
    missing.write_text(json.dumps({"retries": 3}))
    assert flow.validate(validate_resources=True) is False

    made: list[str] = []

    def client() -> str:
        made.append("client")
        raise ConnectionError("no server at db:5432")

    class Connects(Workflow):
        @step
        async def go(self, ev: StartEvent, db: Annotated[str, Resource(client)]) -> StopEvent:
            return StopEvent(result=db)

    assert Connects().validate() is False and made == []  # factories are not called unasked
    with pytest.raises(WorkflowValidationError, match=r"resource 'db': no server at db:5432"):
        Connects().validate(validate_resources=True)
    assert made == ["client"]

    class Asks(Workflow):
        @step
        async def go(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step
        async def done(self, ev: HumanResponseEvent) -> StopEvent:
            return StopEvent(result=ev.response)

    assert Asks().validate() is True


def _traced(fn: Any) -> Any:
    """A decorator around a step that was not handed ``ctx``: it finds it."""

    async def wrapper(self: Any, ev: StartEvent) -> StopEvent:
        ctx = Context.get_step_context()
        await ctx.store.set("traced", True)
        return await fn(self, ev)

    wrapper.__name__ = fn.__name__
    wrapper.__annotations__ = fn.__annotations__
    return wrapper


async def test_get_step_context_finds_the_running_steps_context() -> None:
    class Traced(Workflow):
        @step
        @_traced
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="ok")

    handler = Traced().run()
    assert await handler == "ok"
    assert await handler.ctx.store.get("traced") is True
    with pytest.raises(WorkflowRuntimeError, match="while a step runs"):
        Context.get_step_context()


def test_the_serializer_objects_write_and_read_one_value() -> None:
    json_ = JsonSerializer()
    text = json_.serialize(Asked(n=3))
    assert json.loads(text)["fields"] == {"n": 3}
    assert json_.deserialize(text) == Asked(n=3)
    assert json_.deserialize(json_.serialize({"a": (1, 2)})) == {"a": (1, 2)}
    with pytest.raises(ValueError, match=r"cannot store value"):
        json_.serialize(object())
    pickled = PickleSerializer()
    error = pickled.deserialize(pickled.serialize(KeyError("gone")))
    assert type(error) is KeyError and error.args == ("gone",)  # its class kept, as in the peer
    assert pickled.deserialize(pickled.serialize([1, "a"])) == [1, "a"]
    assert not pickled.serialize([1, "a"]).startswith("gA")  # plain data stays JSON


async def test_a_workflows_serializer_is_what_to_dict_uses_when_not_told() -> None:
    class Plain(Workflow):
        @step
        async def go(self, ctx: Context, ev: StartEvent) -> StopEvent:
            await ctx.store.set("n", 1)
            return StopEvent(result=1)

    handler = Plain(serializer=PickleSerializer()).run()
    await handler
    assert handler.ctx.to_dict()["serializer"] == "pickle"
    assert handler.ctx.to_dict(serializer=JsonSerializer())["serializer"] == "json"


class Greet(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="hi")


def test_a_workflows_default_name_is_its_module_and_qualified_name() -> None:
    assert Greet().workflow_name == "test_peer_compat.Greet"
    assert Greet(workflow_name="greeter").workflow_name == "greeter"


async def test_the_test_runner_reports_step_state_changes_as_the_peers_does() -> None:
    outcome = await WorkflowTestRunner(Greet()).run()
    assert outcome.event_types[StepStateChanged] == 2  # the step began and ended
    plain = await WorkflowTestRunner(Greet()).run(expose_internal=False)
    assert StepStateChanged not in plain.event_types


async def test_a_resource_factory_under_postponed_annotations_may_name_local_classes() -> None:
    class Db:
        n = 7

    class Client:
        def __init__(self, db: Db) -> None:
            self.db = db

    def make_db() -> Db:
        return Db()

    def make_client(db: Annotated[Db, Resource(make_db)]) -> Client:
        return Client(db)

    class Uses(Workflow):
        @step
        async def go(
            self, ev: StartEvent, client: Annotated[Client, Resource(make_client)]
        ) -> StopEvent:
            return StopEvent(result=client.db.n)

    assert await Uses().run() == 7


class Left(Event):
    pass


class Right(Event):
    pass


class Done(Event):
    who: str


class TwoWaiters(Workflow):
    """Two steps wait for a human at once; one answer is for both."""

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Left | Right | None:
        ctx.send_event(Left())
        ctx.send_event(Right())
        return None

    async def _ask(self, ctx: Context, who: str) -> Done:
        question = InputRequiredEvent(prefix=f"{who}?")
        answer = await ctx.wait_for_event(HumanResponseEvent, waiter_event=question)
        return Done(who=f"{who}:{answer.response}")

    @step
    async def left(self, ctx: Context, ev: Left) -> Done:
        return await self._ask(ctx, "left")

    @step
    async def right(self, ctx: Context, ev: Right) -> Done:
        return await self._ask(ctx, "right")

    @step
    async def end(self, ctx: Context, ev: Done) -> StopEvent | None:
        got = ctx.collect_events(ev, [Done, Done])
        return None if got is None else StopEvent(result=sorted(d.who for d in got))


async def test_one_answer_wakes_every_waiter_it_matches() -> None:
    handler = TwoWaiters().run()
    asked = 0
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            asked += 1
            if asked == 2:
                handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert await handler == ["left:yes", "right:yes"]


class Ask(Workflow):
    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        question = InputRequiredEvent(prefix="name?")
        answer = await ctx.wait_for_event(HumanResponseEvent, waiter_event=question)
        return StopEvent(result=f"hello {answer.response}")


async def test_an_answer_sent_right_after_a_restore_waits_for_the_step_that_asks_again() -> None:
    handler = Ask().run()
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            break
    saved = json.dumps(handler.ctx.to_dict())
    await handler.cancel_run()
    restored = Context.from_dict(Ask(), json.loads(saved))
    resumed = Ask().run(ctx=restored)
    resumed.ctx.send_event(HumanResponseEvent(response="Ada"))  # the step has not asked yet
    assert await resumed == "hello Ada"


class Ping(Event):
    value: str


class AwaitsPing(Workflow):
    @step
    async def wait_step(self, ctx: Context, ev: StartEvent) -> StopEvent:
        result = await ctx.wait_for_event(Ping)
        return StopEvent(result=result.value)


async def test_an_event_only_a_waiter_takes_may_be_sent_before_the_step_waits() -> None:
    handler = AwaitsPing().run()
    handler.ctx.send_event(Ping(value="hello"))  # the step has not reached wait_for_event
    assert await handler == "hello"


async def test_an_event_nobody_could_take_is_still_refused_once_nothing_runs() -> None:
    handler = Ask().run()
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            break  # the run waits for a human: no step runs
    with pytest.raises(WorkflowRuntimeError, match="no step accepts Ping"):
        handler.ctx.send_event(Ping(value="lost"))
    handler.ctx.send_event(HumanResponseEvent(response="Bo"))
    assert await handler == "hello Bo"


class Processed(Event):
    pass


class Island(Event):
    pass


def test_a_step_only_an_unreachable_loop_feeds_is_found_unreachable() -> None:
    class WithIsland(Workflow):
        @step
        async def entry(self, ev: StartEvent) -> Processed:
            return Processed()

        @step
        async def finish(self, ev: Processed) -> StopEvent:
            return StopEvent(result="done")

        @step
        async def island(self, ev: Island) -> Island:  # feeds only itself
            return Island()

    with pytest.raises(WorkflowValidationError, match=r"step 'island' .* it is unreachable"):
        WithIsland().validate()
    WithIsland(skip_graph_checks={"reachability"}).validate()
