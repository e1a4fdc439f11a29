"""Errors: the peer's names importable from notebook_workflows.errors, in one hierarchy that
lets ``except`` clauses written for either library catch what they should."""

from __future__ import annotations

import pytest

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows import errors as nw_errors
from notebook_workflows.errors import (
    ContextSerdeError,
    ContextStateError,
    SnapshotError,
    WorkflowCancelledByUser,
    WorkflowCancelledError,
    WorkflowConfigurationError,
    WorkflowDone,
    WorkflowError,
    WorkflowRuntimeError,
    WorkflowStepDoesNotExistError,
    WorkflowTimeoutError,
    WorkflowValidationError,
)

# The public names of workflows.errors in llama-index-workflows 2.26.
PEER_NAMES = [
    "WorkflowValidationError",
    "WorkflowTimeoutError",
    "WorkflowRuntimeError",
    "WorkflowDone",
    "WorkflowCancelledByUser",
    "WorkflowStepDoesNotExistError",
    "WorkflowConfigurationError",
    "ContextSerdeError",
    "ContextStateError",
]


def test_every_peer_error_name_exists_and_is_a_workflow_error() -> None:
    for name in PEER_NAMES:
        cls = getattr(nw_errors, name)
        assert issubclass(cls, WorkflowError), name
        assert cls.__doc__, f"{name} has no docstring"
    assert set(PEER_NAMES) <= set(nw_errors.__all__)


def test_this_projects_errors_keep_their_bases() -> None:
    assert issubclass(WorkflowTimeoutError, TimeoutError)
    assert issubclass(ContextSerdeError, ValueError)
    assert issubclass(SnapshotError, WorkflowError)


def test_cancelled_by_user_is_caught_as_a_cancellation() -> None:
    with pytest.raises(WorkflowCancelledError):
        raise WorkflowCancelledByUser("cancelled with handler.cancel()")


def test_validation_errors_are_configuration_errors() -> None:
    with pytest.raises(WorkflowConfigurationError):
        raise WorkflowValidationError("no step accepts StartEvent")


def test_step_and_state_errors_are_runtime_errors() -> None:
    assert issubclass(WorkflowStepDoesNotExistError, WorkflowRuntimeError)
    assert issubclass(ContextStateError, WorkflowRuntimeError)
    assert not issubclass(WorkflowDone, WorkflowRuntimeError)


def test_validation_error_takes_one_message_as_the_peer_does() -> None:
    error = WorkflowValidationError("num_workers must be an integer greater than 0")
    assert error.problems == ["num_workers must be an integer greater than 0"]
    assert "num_workers" in str(error)


class Later(Event):
    pass


class NoStart(Workflow):
    @step
    async def only(self, ev: Later) -> StopEvent:  # no step accepts StartEvent
        return StopEvent()


def test_an_invalid_workflow_is_caught_by_a_peer_style_configuration_except() -> None:
    try:
        NoStart().validate()
    except WorkflowConfigurationError as error:
        assert "StartEvent" in str(error)
    else:  # pragma: no cover - the assertion is the point
        pytest.fail("validate() accepted a workflow no StartEvent can enter")


class Misaddressed(Workflow):
    @step
    async def go(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.send_event(StartEvent(), step="nope")
        return StopEvent(result=1)


async def test_an_event_for_a_missing_step_is_a_runtime_error_naming_it() -> None:
    with pytest.raises(WorkflowRuntimeError, match="nope"):
        await Misaddressed().run()
