"""@catch_error: a step that fails for good is handed to its handler, which carries the run
on; a handler's recoveries are bounded, counted in snapshots, and its failure fails the run."""

from __future__ import annotations

import pytest

from notebook_workflows import (
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowValidationError,
    catch_error,
    step,
)
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.errors import RecordedError
from notebook_workflows.events import StepFailedEvent


class Fetched(Event):
    text: str


class Fallback(Event):
    reason: str


class Fetching(Workflow):
    @step
    async def fetch(self, ev: StartEvent) -> Fetched:
        if ev.url.startswith("bad:"):
            raise ConnectionError(f"cannot reach {ev.url}")
        return Fetched(text="page")

    @step
    async def summarise(self, ev: Fetched | Fallback) -> StopEvent:
        return StopEvent(result=getattr(ev, "text", None) or f"fallback: {ev.reason}")

    @catch_error(for_steps=["fetch"])
    async def fetch_failed(self, ctx: Context, ev: StepFailedEvent) -> Fallback:
        await ctx.store.set("failure", [ev.step_name, ev.attempts, str(ev.exception)])
        return Fallback(reason=type(ev.exception).__name__)


async def test_a_failed_step_goes_to_its_handler_and_the_run_carries_on() -> None:
    handler = Fetching().run(url="bad://x")
    assert await handler == "fallback: ConnectionError"
    assert await handler.ctx.store.get("failure") == ["fetch", 1, "cannot reach bad://x"]
    assert (await Fetching().run(url="ok://x")) == "page"


class Twice(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Fetched:
        return Fetched(text="a")

    @step
    async def flaky(self, ev: Fetched) -> StopEvent:
        raise ValueError(f"broken on {ev.text}")

    @catch_error(max_recoveries=1)
    async def again(self, ev: StepFailedEvent) -> Fetched:
        return Fetched(text="b")  # the same step fails again: its recovery is spent


async def test_recoveries_are_bounded_then_the_failure_fails_the_run() -> None:
    with pytest.raises(ValueError, match="broken on b"):
        await Twice().run()


async def test_recovery_counts_are_in_the_snapshot_and_exceptions_come_back_recorded() -> None:
    store = MemoryStore()
    handler = Fetching().run(url="bad://y", checkpoint=store)
    await handler
    data = handler.ctx.to_dict()
    assert data["recoveries"] == {"fetch_failed": 1}
    restored = Fetching()
    from notebook_workflows import Context as Ctx

    ctx = Ctx.from_dict(restored, data)
    assert ctx._state.recoveries == {"fetch_failed": 1}
    error = RecordedError("builtins:ValueError", "x")
    assert (error.type_name, str(error)) == ("builtins:ValueError", "x")


def test_handlers_are_checked_with_the_graph() -> None:
    class TwoWildcards(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @catch_error
        async def one(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

        @catch_error
        async def two(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError, match="at most one @catch_error"):
        TwoWildcards().validate()

    class Unknown(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @catch_error(for_steps=["nope"])
        async def one(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

    with pytest.raises(WorkflowValidationError, match="catches step 'nope'"):
        Unknown().validate()


class Part(Event):
    name: str


class Fixed(Event):
    name: str


class Parts(Workflow):
    """Two parts fan out; each fails once and is fixed by the handler on its own line."""

    @step
    async def split(self, ev: StartEvent) -> list[Part]:
        return [Part(name="a"), Part(name="b")]

    @step(num_workers=2)
    async def work(self, ev: Part) -> Fixed:
        if not ev.name.endswith("!"):
            raise ValueError(f"part {ev.name} broke")
        return Fixed(name=ev.name)

    @catch_error(for_steps=["work"], max_recoveries=1)
    async def fix(self, ev: StepFailedEvent) -> Part:
        return Part(name=ev.input_event.name + "!")

    @step
    async def done(self, ctx: Context, ev: Fixed) -> StopEvent | None:
        got = ctx.collect_events(ev, [Fixed, Fixed])
        return None if got is None else StopEvent(result=sorted(e.name for e in got))


async def test_max_recoveries_counts_along_each_line_of_events_not_per_run() -> None:
    handler = Parts().run()
    assert await handler == ["a!", "b!"]  # one recovery on each of two lines
    assert handler.ctx.to_dict()["recoveries"] == {"fix": 2}


class Relapse(Workflow):
    """A failure, its recovery, then a snapshot, then the same line failing again."""

    snapshot: dict | None = None

    @step
    async def begin(self, ev: StartEvent) -> Part:
        return Part(name="x")

    @step
    async def work(self, ctx: Context, ev: Part) -> StopEvent:
        if ev.name == "x!":
            Relapse.snapshot = ctx.to_dict()
        raise ValueError(f"broken on {ev.name}")

    @catch_error(max_recoveries=1)
    async def fix(self, ev: StepFailedEvent) -> Part:
        return Part(name=ev.input_event.name + "!")


async def test_a_lines_recovery_count_survives_to_dict_and_from_dict() -> None:
    with pytest.raises(ValueError, match=r"broken on x!(?!!)"):
        await Relapse().run()
    data = Relapse.snapshot
    assert data is not None
    [running] = data["in_flight"]
    assert data["joins"]["lines"] == {str(running["seq"]): {"fix": 1}}
    workflow = Relapse()
    restored = Context.from_dict(workflow, data)
    with pytest.raises(ValueError, match=r"broken on x!(?!!)"):  # the budget stays spent
        await workflow.run(ctx=restored)
