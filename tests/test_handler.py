"""WorkflowHandler: await the result, stream what happens, watch the status, cancel."""

from __future__ import annotations

import asyncio

import pytest
from helpers import until

from notebook_workflows import (
    Context,
    Event,
    RunStatusChanged,
    StartEvent,
    StepFinished,
    StepStarted,
    StopEvent,
    Workflow,
    WorkflowCancelledError,
    WorkflowHandler,
    step,
)


class Progress(Event):
    pct: int


class Middle(Event):
    pass


class Reporting(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Middle:
        ctx.write_event_to_stream(Progress(pct=50))
        return Middle()

    @step
    async def end(self, ev: Middle) -> StopEvent:
        return StopEvent(result="ok")


async def test_stream_has_written_events_lifecycle_records_and_the_stop_event() -> None:
    handler = Reporting().run()
    items = [item async for item in handler.stream_events(lifecycle=True)]
    assert await handler == "ok"
    kinds = [type(i).__name__ for i in items]
    assert kinds == [
        "StepStarted",
        "Progress",
        "StepFinished",
        "StepStarted",
        "StepFinished",
        "RunStatusChanged",
        "StopEvent",  # the stream ends with the stop event, as in llama-index-workflows
    ]
    started = [i for i in items if isinstance(i, StepStarted)]
    assert [s.step for s in started] == ["begin", "end"]
    finished = [i for i in items if isinstance(i, StepFinished)]
    assert [type(e).__name__ for e in finished[0].produced] == ["Middle"]
    assert items[-2] == RunStatusChanged(handler.run_id, "done", "", items[-2].at)


async def test_a_late_listener_still_gets_the_written_events() -> None:
    handler = Reporting().run()
    await handler
    items = [item async for item in handler.stream_events(lifecycle=False)]
    assert [type(i).__name__ for i in items] == ["Progress", "StopEvent"]


async def test_status_and_run_id() -> None:
    handler = Reporting().run(run_id="my-run")
    assert handler.run_id == "my-run"
    assert handler.status == "running"
    await handler
    assert handler.status == "done"
    assert handler.steps_done == 2
    assert "done" in repr(handler)


async def test_generated_run_ids_are_readable_and_unique() -> None:
    ids = {Reporting().run().run_id for _ in range(20)}
    assert len(ids) == 20
    assert all(i.startswith("reporting-") for i in ids)


class Slow(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> StopEvent:
        await asyncio.sleep(10)
        return StopEvent()


async def test_cancel_stops_the_run() -> None:
    handler = Slow().run()
    await until(lambda: handler.view().running, what="the step running")
    await handler.cancel()
    assert handler.status == "cancelled"
    with pytest.raises(WorkflowCancelledError, match="was cancelled"):
        await handler


async def test_cancelling_the_awaiting_code_cancels_the_run() -> None:
    handler = Slow().run()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(handler, 0.05)
    await asyncio.sleep(0)
    assert handler.status == "cancelled"


async def test_result_and_exception_of_a_finished_run() -> None:
    handler = Reporting().run()
    await handler
    assert handler.done() and handler.result() == "ok" and handler.exception() is None


async def test_a_step_that_completed_just_before_a_cancel_is_recorded_as_done() -> None:
    handlers: list[WorkflowHandler] = []

    class Quick(Workflow):
        @step
        async def begin(self, ctx: Context, ev: StartEvent) -> Middle:
            await asyncio.sleep(0)  # suspends once: the rest runs as a task
            await ctx.store.set("begun", True)
            # the cancel lands after this task finished, before its done callback runs
            asyncio.get_running_loop().call_soon(handlers[0]._driver.cancel, "test")
            return Middle()

        @step
        async def end(self, ev: Middle) -> StopEvent:
            return StopEvent()

    handler = Quick().run()
    handlers.append(handler)
    with pytest.raises(WorkflowCancelledError):
        await handler
    assert handler.steps_done == 1  # begin's completion was kept with its store write
    in_flight = [f["step"] for f in handler.ctx.to_dict()["in_flight"]]
    assert "begin" not in in_flight
