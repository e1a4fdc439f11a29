"""validate() names every problem of the graph; run() validates first."""

from __future__ import annotations

import pytest

from notebook_workflows import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowValidationError,
    step,
)


class Orphan(Event):
    pass


class Never(Event):
    pass


def test_no_start_event_consumer() -> None:
    class Flow(Workflow):
        @step
        async def only(self, ev: Never) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError, match="no step accepts StartEvent"):
        Flow().validate()


def test_no_stop_event_producer() -> None:
    class Flow(Workflow):
        @step
        async def only(self, ev: StartEvent) -> None:
            return None

    with pytest.raises(WorkflowValidationError, match="no step returns a StopEvent"):
        Flow().validate()


def test_event_produced_but_never_consumed_names_step_and_type() -> None:
    class Flow(Workflow):
        @step
        async def only(self, ev: StartEvent) -> Orphan | StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError, match="step 'only' produces Orphan, but no step"):
        Flow().validate()


def test_event_consumed_but_never_produced_names_step_and_type() -> None:
    class Flow(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def lost(self, ev: Never) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError, match="step 'lost' accepts Never, but no step"):
        Flow().validate()


def test_all_problems_are_reported_together() -> None:
    class Flow(Workflow):
        @step
        async def a(self, ev: Never) -> Orphan:
            return Orphan()

    with pytest.raises(WorkflowValidationError) as info:
        Flow().validate()
    assert len(info.value.problems) == 4


def test_human_in_the_loop_events_need_no_partner() -> None:
    class Flow(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step
        async def answer(self, ev: HumanResponseEvent) -> StopEvent:
            return StopEvent()

    Flow().validate()


async def test_run_validates_first_and_starts_nothing() -> None:
    started = []

    class Flow(Workflow):
        @step
        async def only(self, ev: StartEvent) -> Orphan | StopEvent:
            started.append(1)
            return StopEvent()

    with pytest.raises(WorkflowValidationError):
        Flow().run()
    assert started == []
