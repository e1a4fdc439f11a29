"""testing.WorkflowTestRunner: run a workflow in a test and look at what it streamed."""

from __future__ import annotations

import pytest
from flows import Pipeline

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.events import (
    RunStatusChanged,
    StepFinished,
    StepStarted,
    StepStateChanged,
)
from notebook_workflows.testing import WorkflowTestResult, WorkflowTestRunner


class Progress(Event):
    done: int


class Greet(Workflow):
    @step
    async def greet(self, ctx: Context, ev: StartEvent) -> StopEvent:
        for i in range(3):
            ctx.write_event_to_stream(Progress(done=i))
        return StopEvent(result=f"hello {ev.get('name', 'world')}")


class Broken(Workflow):
    @step
    async def fail(self, ev: StartEvent) -> StopEvent:
        raise RuntimeError("broken on purpose")


async def test_run_collects_the_stream_counts_it_and_returns_the_result() -> None:
    outcome = await WorkflowTestRunner(Greet()).run(StartEvent(name="Ada"))
    assert isinstance(outcome, WorkflowTestResult)
    assert outcome.result == "hello Ada"
    assert outcome.event_types[Progress] == 3 and outcome.event_types[StopEvent] == 1
    events = [e for e in outcome.collected if isinstance(e, (Progress, StopEvent))]
    assert [e.done for e in events[:3]] == [0, 1, 2] and isinstance(events[-1], StopEvent)
    assert outcome.ctx.run_id


async def test_internal_records_come_with_expose_internal_and_can_be_excluded() -> None:
    runner = WorkflowTestRunner(Greet())
    peers = await runner.run()  # expose_internal=True: what llama-index-workflows streams
    assert set(peers.event_types) == {Progress, StepStateChanged, StopEvent}
    inside = await runner.run(lifecycle=True)
    assert inside.result == "hello world"
    assert inside.event_types[StepStarted] == 1 and inside.event_types[StepFinished] == 1
    plain = await runner.run(expose_internal=False)
    assert set(plain.event_types) == {Progress, StopEvent}
    some = await runner.run(exclude_events=[Progress, RunStatusChanged], lifecycle=True)
    assert Progress not in some.event_types and RunStatusChanged not in some.event_types
    assert some.event_types[StepStarted] == 1


async def test_a_fan_out_workflow_runs_every_step() -> None:
    Pipeline.converted = []
    outcome = await WorkflowTestRunner(Pipeline()).run(StartEvent(ids=[1, 2, 3]), lifecycle=True)
    assert outcome.result == [1, 2, 3]
    assert outcome.event_types[StepStarted] == 1 + 3 + 3  # split, convert x3, join x3
    assert await outcome.ctx.store.get("ids") == (1, 2, 3)


async def test_a_failing_run_raises_its_error() -> None:
    with pytest.raises(RuntimeError, match="broken on purpose"):
        await WorkflowTestRunner(Broken()).run()
