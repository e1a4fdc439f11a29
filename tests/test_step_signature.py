"""@step reads a step's whole contract from its signature, and says clearly what is wrong."""

from __future__ import annotations

from typing import Annotated

import pytest

from notebook_workflows import (
    Context,
    Event,
    Resource,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowValidationError,
    step,
)


class A(Event):
    pass


class B(Event):
    pass


def make_client() -> str:
    return "client"


def test_signature_gives_accepted_and_produced_types_context_and_resources() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> A | B:
            return A()

        @step(num_workers=3)
        async def middle(
            self, ev: A | B, client: Annotated[str, Resource(make_client)]
        ) -> StopEvent | None:
            return StopEvent()

    specs = Flow._step_specs()
    assert list(specs) == ["begin", "middle"]
    assert specs["begin"].accepts == (StartEvent,)
    assert specs["begin"].produces == (A, B)
    assert specs["middle"].accepts == (A, B)
    assert specs["middle"].produces == (StopEvent,)
    assert specs["middle"].num_workers == 3
    assert [name for name, _ in specs["middle"].resources] == ["client"]
    assert specs["begin"].is_async


def test_parameter_without_annotation_names_the_step_and_parameter() -> None:
    with pytest.raises(WorkflowValidationError, match=r"step 'begin': parameter 'ev' has no"):

        class Flow(Workflow):
            @step
            async def begin(self, ev) -> StopEvent:  # type: ignore[no-untyped-def]
                return StopEvent()


def test_missing_return_annotation_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match=r"step 'begin' has no return annotation"):

        class Flow(Workflow):
            @step
            async def begin(self, ev: StartEvent):  # type: ignore[no-untyped-def]
                return StopEvent()


def test_a_union_in_one_of_several_event_parameters_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match=r"parameter 'other' of a step with several"):

        class Flow(Workflow):
            @step
            async def begin(self, ev: StartEvent, other: A | StartEvent) -> StopEvent:
                return StopEvent()


def test_step_without_event_parameter_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match=r"step 'begin' has no event parameter"):

        class Flow(Workflow):
            @step
            async def begin(self, ctx: Context) -> StopEvent:
                return StopEvent()


def test_returning_a_non_event_type_is_refused_naming_the_type() -> None:
    with pytest.raises(WorkflowValidationError, match=r"step 'begin' returns int"):

        class Flow(Workflow):
            @step
            async def begin(self, ev: StartEvent) -> int:
                return 1


def test_a_non_event_parameter_is_refused_naming_its_type() -> None:
    with pytest.raises(WorkflowValidationError, match=r"parameter 'n' is annotated int"):

        class Flow(Workflow):
            @step
            async def begin(self, ev: StartEvent, n: int) -> StopEvent:
                return StopEvent()


def test_every_signature_problem_is_listed_at_once() -> None:
    with pytest.raises(WorkflowValidationError) as info:

        class Flow(Workflow):
            @step
            async def one(self, ev) -> StopEvent:  # type: ignore[no-untyped-def]
                return StopEvent()

            @step
            async def two(self, ev: StartEvent):  # type: ignore[no-untyped-def]
                return StopEvent()

    assert len(info.value.problems) == 2
    assert "'one'" in str(info.value) and "'two'" in str(info.value)


def test_step_options_are_checked() -> None:
    with pytest.raises(ValueError, match="num_workers"):
        step(num_workers=0)
    with pytest.raises(ValueError, match="timeout"):
        step(timeout=-1)
    with pytest.raises(TypeError, match="retry_policy"):
        step(retry_policy=object())  # type: ignore[arg-type]


def test_events_defined_in_a_function_are_resolved() -> None:
    class Local(Event):
        n: int

    class Flow(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> Local:
            return Local(n=1)

        @step
        async def end(self, ev: Local) -> StopEvent:
            return StopEvent(result=ev.n)

    assert Flow._step_specs()["end"].accepts == (Local,)


def test_subclass_inherits_and_overrides_steps() -> None:
    class Base(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="base")

    class Child(Base):
        @step
        async def begin(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="child")

    assert Child().run_sync() == "child"
    assert Base().run_sync() == "base"
