"""debug_step(run_id): the call of a failed step back in a cell, called again on a scratch copy
of its run: its input and store as they were, the step's current code, nothing written."""

from __future__ import annotations

import os
import re
import sys
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Approve, Counter
from helpers import waiting

import notebook_workflows
from notebook_workflows import (
    Context,
    Event,
    SnapshotError,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    WorkflowStepDoesNotExistError,
    step,
)
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore
from notebook_workflows.checkpoint.debug import StepCall, StepResult

PACKAGE = os.path.dirname(os.path.abspath(notebook_workflows.__file__))


class Part(Event):
    n: int


class Note(Event):
    text: str


class Left(Event):
    pass


class Right(Event):
    pass


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with SQLiteStore(tmp_path / "runs.db") as sqlite:
        yield sqlite


@pytest.fixture
def report() -> type[Workflow]:
    """A workflow of its own for each test (a test replaces its step): gather, then a render
    that fails after writing to the store."""

    class Report(Workflow):
        calls: list[str]

        @step
        async def gather(self, ctx: Context, ev: StartEvent) -> Part:
            await ctx.store.set("parts", [1, 2, 3])
            return Part(n=10)

        @step
        async def render(self, ctx: Context, ev: Part) -> StopEvent:
            parts = await ctx.store.get("parts")
            await ctx.store.set("rendered", True)
            return StopEvent(result=sum(parts) * ev.n / 0)

    return Report


@step
async def fixed_render(self: Any, ctx: Context, ev: Part) -> StopEvent:
    parts = await ctx.store.get("parts")
    parts.append(4)  # changed in place: counted as a change
    await ctx.store.delete("rendered")
    await ctx.store.set("total", sum(parts))
    ctx.send_event(Part(n=1))
    ctx.write_event_to_stream(Note(text="streamed"))
    return StopEvent(result=sum(parts) * ev.n)


async def failed_run(workflow: Workflow, store: Any, **fields: Any) -> str:
    handler = workflow.run(checkpoint=store, **fields)
    with pytest.raises(Exception):  # noqa: B017 - each test says which error its step raises
        await handler
    return handler.run_id


def kept(store: Any) -> list[tuple[str, int]]:
    """Every run the store holds with its number of snapshots."""
    return sorted((info.run_id, len(store.history(info.run_id))) for info in store.runs())


# -- the failed call ------------------------------------------------------------------------------


async def test_it_gives_the_call_that_failed_with_its_input_and_the_store_as_it_was(
    store: Any, report: type[Workflow]
) -> None:
    run_id = await failed_run(report(), store)
    call = await report().debug_step(run_id, store=store)
    assert isinstance(call, StepCall)
    assert (call.step, call.event, call.run_id) == ("render", Part(n=10), run_id)
    assert dict(call.store) == {"parts": [1, 2, 3], "rendered": True}
    assert call.error == "ZeroDivisionError: division by zero"
    assert call.seq == store.latest(run_id).seq
    with pytest.raises(TypeError):
        call.store["parts"] = []  # type: ignore[index]  # a read-only view of the store


async def test_its_repr_shows_the_step_the_input_the_error_and_the_store(
    store: Any, report: type[Workflow]
) -> None:
    run_id = await failed_run(report(), store)
    call = await report().debug_step(run_id, store=store)
    shown = repr(call)
    assert f"step 'render' of run '{run_id}' at snapshot #{call.seq}" in shown
    assert "failed with: ZeroDivisionError: division by zero" in shown
    assert "input: Part(n=10)" in shown and "parts=[1, 2, 3], rendered=True" in shown
    assert "await call.run()" in shown
    markup = call._repr_html_()
    assert "<code>Part(n=10)</code>" in markup and "ZeroDivisionError" in markup


async def test_running_it_raises_the_steps_error_with_the_step_as_the_last_frame(
    store: Any, report: type[Workflow]
) -> None:
    run_id = await failed_run(report(), store)
    call = await report().debug_step(run_id, store=store)
    with pytest.raises(ZeroDivisionError) as caught:
        await call.run()
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert frames[-1].name == "render" and "/ 0" in (frames[-1].line or "")
    assert not [f for f in frames if f.filename.startswith(PACKAGE)]  # only the user's frames


async def test_after_a_fix_it_returns_what_the_step_emits_and_writes_nothing(
    store: Any, report: type[Workflow]
) -> None:
    run_id = await failed_run(report(), store)
    call = await report().debug_step(run_id, store=store)
    before = kept(store)
    report.render = fixed_render  # type: ignore[attr-defined]  # the fix, set on the class
    result = await call.run()
    assert isinstance(result, StepResult)
    assert result.returned == StopEvent(result=100)
    assert result.sent == (Part(n=1),)
    assert result.streamed == (Note(text="streamed"),)
    assert result.emitted == [Part(n=1), StopEvent(result=100)]
    assert dict(result.store_changes) == {"parts": [1, 2, 3, 4], "total": 10}
    assert result.deleted == ("rendered",)
    assert dict(result.store) == {"parts": [1, 2, 3, 4], "total": 10}
    assert "returned: StopEvent(result=100)" in repr(result)
    assert "rendered deleted" in repr(result)
    assert kept(store) == before  # not one record more, no new run
    assert dict(call.store) == {"parts": [1, 2, 3], "rendered": True}
    assert (await call.run()).store_changes == result.store_changes  # a fresh copy each time


async def test_resume_after_the_fix_runs_the_fixed_step(store: Any, report: type[Workflow]) -> None:
    run_id = await failed_run(report(), store)
    call = await report().debug_step(run_id, store=store)
    report.render = fixed_render  # type: ignore[attr-defined]
    assert (await call.run()).returned == StopEvent(result=100)
    with pytest.warns(UserWarning, match="new code in step 'render'"):
        resumed = report().resume(run_id, store=store)
    assert await resumed == 100


async def test_a_step_that_returns_what_the_run_would_refuse_is_refused(
    report: type[Workflow],
) -> None:
    store = MemoryStore()
    run_id = await failed_run(report(), store)
    call = await report().debug_step(run_id, store=store)

    @step
    async def render(self: Any, ctx: Context, ev: Part) -> StopEvent:
        return 42  # type: ignore[return-value]

    report.render = render  # type: ignore[attr-defined]
    with pytest.raises(WorkflowRuntimeError, match=r"step 'render' returned 42 \(int\)"):
        await call.run()


# -- the step's current code ----------------------------------------------------------------------

CELL = """
from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step

class Part(Event):
    n: int

class Report(Workflow):
    @step
    async def gather(self, ctx: Context, ev: StartEvent) -> Part:
        await ctx.store.set("parts", [1, 2, 3])
        return Part(n=10)

    @step
    async def {render}(self, ctx: Context, ev: Part) -> StopEvent:
        parts = await ctx.store.get("parts")
        assert isinstance(ev, Part)  # the event class this cell defines
        return StopEvent(result={body})
"""


@pytest.fixture
def notebook() -> Iterator[types.ModuleType]:
    """A module standing for a notebook's namespace, whose cells run again."""
    module = types.ModuleType("debug_notebook")
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def run_cell(module: types.ModuleType, render: str = "render", body: str = "") -> Any:
    """What re-running a notebook cell does: the same names, bound to new classes."""
    exec(CELL.format(render=render, body=body), module.__dict__)
    return module.Report


async def test_a_class_defined_again_in_its_cell_is_what_runs(notebook: types.ModuleType) -> None:
    store = MemoryStore()
    Report = run_cell(notebook, body="sum(parts) * ev.n / 0")
    run_id = await failed_run(Report(), store)
    call = await Report().debug_step(run_id, store=store)
    run_cell(notebook, body="sum(parts) * ev.n")  # the fix, and new event classes
    result = await call.run()
    assert result.returned.result == 60
    assert type(result.returned) is notebook.StopEvent


async def test_a_step_gone_from_the_class_is_named(notebook: types.ModuleType) -> None:
    store = MemoryStore()
    Report = run_cell(notebook, body="1 / 0")
    run_id = await failed_run(Report(), store)
    call = await Report().debug_step(run_id, store=store)
    Report = run_cell(notebook, render="draw", body="1")
    message = r"Report has no step 'render' now.*its steps: gather, draw"
    with pytest.raises(WorkflowStepDoesNotExistError, match=message):
        await call.run()
    with pytest.raises(WorkflowStepDoesNotExistError, match=message):
        await Report().debug_step(run_id, store=store)


# -- at=, step= -----------------------------------------------------------------------------------


async def test_at_takes_the_call_running_at_that_snapshot(store: Any) -> None:
    Counter.ran = []
    handler = Counter().run(checkpoint=store, n=5)
    assert await handler == 5
    history = store.history(handler.run_id)
    assert history[2].describe().startswith("#2 after step 'tick'")  # tick 0 had returned
    call = await Counter().debug_step(handler.run_id, store=store, at=2)
    assert (call.step, call.event.i, call.seq, call.error) == ("tick", 1, 2, None)
    assert call.store["counter"] == 1
    result = await call.run()
    assert result.returned.i == 2 and result.store_changes["counter"] == 2
    first = await Counter().debug_step(handler.run_id, store=store, at=0)
    assert (first.step, type(first.event), dict(first.store)) == ("begin", StartEvent, {})
    assert (await first.run()).store_changes == {"counter": 0, "n": 5, "delay": 0.0}
    assert len(store.history(handler.run_id)) == len(history)


class Both(Workflow):
    """One step sends two events; both steps that take them run at once."""

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Left | Right | None:
        ctx.send_event(Left())
        ctx.send_event(Right())
        return None

    @step
    async def left(self, ctx: Context, ev: Left) -> StopEvent:
        return StopEvent(result="left")

    @step
    async def right(self, ctx: Context, ev: Right) -> StopEvent:
        return StopEvent(result="right")


async def test_step_picks_one_of_the_calls_running_at_once() -> None:
    store = MemoryStore()
    handler = Both().run(checkpoint=store)
    await handler
    oldest = await Both().debug_step(handler.run_id, store=store, at=1)
    assert (oldest.step, oldest.event) == ("left", Left())
    right = await Both().debug_step(handler.run_id, store=store, at=1, step="right")
    assert (right.step, (await right.run()).returned) == ("right", StopEvent(result="right"))
    with pytest.raises(WorkflowRuntimeError, match="no call of step 'begin'.*'left', .*'right'"):
        await Both().debug_step(handler.run_id, store=store, at=1, step="begin")


async def test_step_without_at_must_name_the_step_that_failed(report: type[Workflow]) -> None:
    store = MemoryStore()
    run_id = await failed_run(report(), store)
    assert (await report().debug_step(run_id, store=store, step="render")).step == "render"
    with pytest.raises(WorkflowRuntimeError, match="failed in run .* is 'render', not 'gather'"):
        await report().debug_step(run_id, store=store, step="gather")


# -- what a step may ask of its context -----------------------------------------------------------


class Charge(Workflow):
    """A step that records an outside call with ctx.once, then fails."""

    charged = 0

    @step
    async def pay(self, ctx: Context, ev: StartEvent) -> StopEvent:
        receipt = await ctx.once("charge", self.charge)
        raise RuntimeError(f"lost the line after {receipt}")

    def charge(self) -> str:
        type(self).charged += 1
        return f"receipt-{type(self).charged}"


async def test_a_recorded_once_result_is_handed_back_without_calling_again() -> None:
    store = MemoryStore()
    Charge.charged = 0
    run_id = await failed_run(Charge(), store)
    call = await Charge().debug_step(run_id, store=store)
    with pytest.raises(RuntimeError, match="lost the line after receipt-1"):
        await call.run()
    assert Charge.charged == 1


async def test_a_wait_with_no_answer_yet_is_refused_saying_why() -> None:
    store = MemoryStore()
    handler = Approve().run(checkpoint=store, draft="v2")
    await waiting(handler)
    await handler.cancel()
    call = await Approve().debug_step(handler.run_id, store=store, at=-1)
    assert call.step == "ask"
    with pytest.raises(WorkflowRuntimeError, match="waits for HumanResponseEvent here"):
        await call.run()


class Sync(Workflow):
    """A sync step (run on a worker thread) that fails after writing to the store."""

    @step
    def count(self, ctx: Context, ev: StartEvent) -> StopEvent:
        ctx.store.set("seen", ev.n)
        return StopEvent(result=ev.n / ev.divisor)


async def test_a_sync_step_runs_on_a_thread_and_its_error_ends_in_the_step() -> None:
    store = MemoryStore()
    run_id = await failed_run(Sync(), store, n=4, divisor=0)
    call = await Sync().debug_step(run_id, store=store)
    with pytest.raises(ZeroDivisionError) as caught:
        await call.run()
    assert traceback.extract_tb(caught.value.__traceback__)[-1].name == "count"


def test_the_sync_twins_need_no_event_loop(report: type[Workflow]) -> None:
    store = MemoryStore()
    with pytest.raises(ZeroDivisionError):
        report().run_sync(checkpoint=store)
    [info] = store.runs()
    call = report().debug_step_sync(info.run_id, store=store)
    report.render = fixed_render  # type: ignore[attr-defined]
    assert call.run_sync().returned == StopEvent(result=100)


# -- refusals -------------------------------------------------------------------------------------


async def test_an_unknown_run_is_named_with_the_store(store: Any) -> None:
    with pytest.raises(SnapshotError, match=re.escape(f"{store!r} has no run 'nope'")):
        await Counter().debug_step("nope", store=store)


async def test_a_run_that_did_not_fail_needs_at_and_says_so(store: Any) -> None:
    handler = Counter().run(checkpoint=store, n=2)
    await handler
    last = store.latest(handler.run_id).seq
    with pytest.raises(WorkflowRuntimeError) as caught:
        await Counter().debug_step(handler.run_id, store=store)
    message = str(caught.value)
    assert f"run {handler.run_id!r}" in message and "has no failed step: it is done" in message
    assert f"with at= (0 to {last}" in message


async def test_at_out_of_range_gives_the_range(store: Any) -> None:
    handler = Counter().run(checkpoint=store, n=2)
    await handler
    last = store.latest(handler.run_id).seq
    with pytest.raises(SnapshotError, match=f"has no snapshot 99: .* numbered 0 to {last}"):
        await Counter().debug_step(handler.run_id, store=store, at=99)


async def test_a_snapshot_with_no_call_running_says_so() -> None:
    store = MemoryStore()
    handler = Counter().run(checkpoint=store, n=2)
    await handler
    with pytest.raises(WorkflowRuntimeError, match=r"snapshot \d+ of run .* has no step call"):
        await Counter().debug_step(handler.run_id, store=store, at=-1)


async def test_a_run_of_another_workflow_is_refused(report: type[Workflow]) -> None:
    store = MemoryStore()
    run_id = await failed_run(report(), store)
    with pytest.raises(SnapshotError, match="cannot debug run .* not of Counter"):
        await Counter().debug_step(run_id, store=store)


# -- in a real kernel -----------------------------------------------------------------------------

KERNEL_CELL = """
from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import MemoryStore

class Part(Event):
    n: int

class Report(Workflow):
    @step
    async def gather(self, ctx: Context, ev: StartEvent) -> Part:
        await ctx.store.set("parts", [1, 2, 3])
        return Part(n=10)

    @step
    async def render(self, ctx: Context, ev: Part) -> StopEvent:
        parts = await ctx.store.get("parts")
        return StopEvent(result={body})
"""


@pytest.mark.kernel
def test_in_a_kernel_debug_finds_the_step_and_the_cell_fix_runs(tmp_path: Path) -> None:
    from kernel_helpers import Kernel

    kernel = Kernel(tmp_path)
    try:
        kernel.check(KERNEL_CELL.format(body="sum(parts) * ev.n / 0"))
        kernel.check(
            "store = MemoryStore()\nhandler = Report().run(checkpoint=store)\n"
            "try:\n    await handler\nexcept ZeroDivisionError:\n    pass\n"
            "call = await Report().debug_step(handler.run_id, store=store)"
        )
        failed = kernel.run("await call.run()")
        assert failed.error is not None and failed.error["ename"] == "ZeroDivisionError"
        shown = "\n".join(failed.error["traceback"])
        assert "render" in shown and PACKAGE not in shown  # no frame of the library
        # what %debug opens: the last frame of the last traceback
        last = kernel.check(
            "import sys\ntb = sys.last_traceback\nwhile tb.tb_next:\n    tb = tb.tb_next\n"
            "print(tb.tb_frame.f_code.co_name, sorted(tb.tb_frame.f_locals))"
        )
        assert last.stdout.strip() == "render ['ctx', 'ev', 'parts', 'self']"
        kernel.check(KERNEL_CELL.format(body="sum(parts) * ev.n"))  # the cell, fixed
        fixed = kernel.check("result = await call.run()\nprint(result.returned.result)")
        assert fixed.stdout.strip() == "60"
        resumed = kernel.check("print(await Report().resume(handler.run_id, store=store))")
        said, result = resumed.stdout.strip().splitlines()
        assert "with new code in step 'render' (edited in this notebook)" in said
        assert result == "60"
    finally:
        kernel.shutdown()
