"""decorators: the peer's module path for @step, and @catch_error recording its options."""

from __future__ import annotations

import pytest

from notebook_workflows import StartEvent, StopEvent, Workflow
from notebook_workflows import step as root_step
from notebook_workflows.decorators import (
    CatchErrorOptions,
    catch_error,
    catch_error_options,
    step,
)
from notebook_workflows.errors import WorkflowValidationError
from notebook_workflows.events import StepFailedEvent


def test_step_is_this_projects_step() -> None:
    assert step is root_step


def test_catch_error_records_its_options_on_the_function() -> None:
    @catch_error(for_steps=["fetch"], max_recoveries=2)
    async def handler(self: object, ev: StepFailedEvent) -> StopEvent:
        return StopEvent()

    assert catch_error_options(handler) == CatchErrorOptions(("fetch",), 2)


def test_bare_catch_error_is_a_wildcard_with_one_recovery() -> None:
    @catch_error
    async def handler(self: object, ev: StepFailedEvent) -> StopEvent:
        return StopEvent()

    assert catch_error_options(handler) == CatchErrorOptions(None, 1)
    assert catch_error_options(lambda: None) is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_max_recoveries_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(WorkflowValidationError, match="max_recoveries"):
        catch_error(max_recoveries=bad)  # type: ignore[arg-type]


def test_for_steps_must_be_step_names() -> None:
    with pytest.raises(WorkflowValidationError, match="for_steps"):
        catch_error(for_steps="fetch")  # type: ignore[arg-type]
    with pytest.raises(WorkflowValidationError, match="for_steps"):
        catch_error(for_steps=[1])  # type: ignore[list-item]


def test_a_handler_must_accept_step_failed_event() -> None:
    with pytest.raises(WorkflowValidationError, match="StepFailedEvent"):

        @catch_error
        async def handler(self: object, ev: StartEvent) -> StopEvent:
            return StopEvent()


class Guarded(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="ok")

    @catch_error
    async def failed(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent(result="recovered")


async def test_a_workflow_with_a_handler_still_validates_and_runs() -> None:
    Guarded().validate()
    assert await Guarded().run() == "ok"
