"""Errors a person meets in a cell say what happened and what to do next."""

from __future__ import annotations

import asyncio
import sys

import pytest
from helpers import until

from notebook_workflows import StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore


class NeedsPath(Workflow):
    @step
    async def load(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ev.path)


async def test_a_missing_start_field_names_the_run_argument_and_those_given() -> None:
    with pytest.raises(AttributeError) as caught:
        await NeedsPath().run(name="report")
    message = str(caught.value)
    assert "the run was not given 'path'" in message
    assert "run(path=...)" in message and "name=" in message


class Slow(Workflow):
    @step
    async def wait(self, ev: StartEvent) -> StopEvent:
        await asyncio.sleep(30)
        return StopEvent()


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="exception notes exist (and tracebacks show them) from 3.11"
)
async def test_an_interrupted_checkpointed_run_says_how_to_resume_it() -> None:
    handler = Slow().run(checkpoint=MemoryStore(), run_id="slow-1")

    awaiting = asyncio.Event()

    async def cell() -> None:
        awaiting.set()
        await handler

    task = asyncio.ensure_future(cell())
    await awaiting.wait()  # the cell awaits the run
    await until(lambda: handler.view().running, what="the step running")
    task.cancel()  # what an interrupted cell does
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    notes = getattr(caught.value, "__notes__", [])
    line = "await Slow().resume('slow-1', store=store) (store: the MemoryStore it ran with)"
    assert any(line in note for note in notes), notes
    await until(lambda: handler.status == "cancelled", what="the run cancelled")


def _our_frames(error: BaseException) -> list[str]:
    import os
    import traceback

    import notebook_workflows

    package = os.path.dirname(notebook_workflows.__file__)
    return [
        f"{frame.filename}:{frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename.startswith(package)
    ]


async def test_a_refusal_shows_the_users_line_and_the_public_call_only() -> None:
    from notebook_workflows import Context, WorkflowValidationError

    class Broken(Workflow):  # nothing returns a StopEvent: refused when made, as in the peer
        @step
        async def go(self, ev: StartEvent) -> None:
            return None

    with pytest.raises(WorkflowValidationError) as caught:
        Broken()
    assert len(_our_frames(caught.value)) <= 1, _our_frames(caught.value)
    with pytest.raises(WorkflowValidationError) as caught:
        Broken(disable_validation=True).validate()
    assert len(_our_frames(caught.value)) <= 1, _our_frames(caught.value)

    ctx = Context(NeedsPath())
    with pytest.raises(Exception, match="cannot store") as refused:
        await ctx.store.set("socket", object())
    assert len(_our_frames(refused.value)) <= 1, _our_frames(refused.value)


class Failing(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        raise ValueError("bad input")


async def test_a_step_error_from_step_shows_the_steps_own_frames() -> None:
    handler = Failing().run(stepwise=True)
    with pytest.raises(ValueError, match="bad input") as caught:
        await handler.step()
    import traceback

    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert "go" in names and len(_our_frames(caught.value)) <= 1
