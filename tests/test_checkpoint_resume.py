"""resume(run_id): completed steps never run again; failed, cancelled and paused runs go on."""

from __future__ import annotations

import asyncio
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Approve, Counter, Docs
from helpers import until, waiting

from notebook_workflows import (
    ContextSerdeError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    SnapshotError,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from notebook_workflows.checkpoint import (
    MemoryStore,
    RunOwnedError,
    SQLiteStore,
    StepCodeChangedWarning,
)
from notebook_workflows.snapshot import code_changes, graph_of


@pytest.fixture(autouse=True)
def reset_counts() -> None:
    Counter.ran = []
    Approve.prepared = Approve.asked = 0


async def mid_step(handler: Any, ticks: int) -> None:
    """Wait until the run has taken in ``ticks`` ticks and the next step is running: the tests
    cancel while a step sleeps, not in the instant between a step's end and the driver's
    routing of its result."""

    def there() -> bool:
        view = handler.view()
        return view.steps_done > ticks and bool(view.running)  # begin, then the ticks

    await until(there, what=f"tick {ticks} of run {handler.run_id}")


async def test_a_cancelled_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    handler = Counter().run(checkpoint=store, n=12, delay=0.005)
    await mid_step(handler, 4)
    await handler.cancel()
    assert handler.status == "cancelled"
    latest = store.latest(handler.run_id)
    assert (latest.reason, latest.status) == ("end", "cancelled")
    done_before = list(Counter.ran)
    resumed = Counter().resume(handler.run_id, store=store)
    assert resumed.run_id == handler.run_id
    assert await resumed == 12
    assert Counter.ran == list(range(12))  # nothing ran twice
    assert Counter.ran[len(done_before)] == len(done_before)
    history = store.history(handler.run_id)
    assert [s.reason for s in history].count("resume") == 1  # appended to the same history
    assert history[-1].status == "done" and store.runs()[0].status == "done"


CELL = """
from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step

class Part(Event):
    n: int

class Report(Workflow):
    @step
    async def gather(self, ctx: Context, ev: StartEvent) -> Part:
        RAN.append("gather")
        await ctx.store.set("parts", [1, 2, 3])
        return Part(n=10)

    @step
    async def {render}(self, ctx: Context, ev: Part) -> StopEvent:
        RAN.append("render")
        parts = await ctx.store.get("parts")
        return StopEvent(result={body})
"""


def run_cell(module: types.ModuleType, render: str = "render", body: str = "") -> type:
    """What re-running a notebook cell does: the same names, bound to new classes."""
    exec(CELL.format(render=render, body=body), module.__dict__)
    return module.Report  # type: ignore[no-any-return]


@pytest.fixture
def notebook() -> Any:
    module = types.ModuleType("ckpt_notebook")
    module.RAN = []  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


async def test_a_failed_step_fixed_in_a_cell_is_retried_alone(
    tmp_path: Path, notebook: Any
) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    Report = run_cell(notebook, body="sum(parts) * ev.n / 0")
    handler = Report().run(checkpoint=store)
    with pytest.raises(ZeroDivisionError):
        await handler
    latest = store.latest(handler.run_id)
    assert latest.status == "failed"
    [failed] = latest.context["in_flight"]
    assert failed["step"] == "render" and "ZeroDivisionError" in failed["error"]

    Report = run_cell(notebook, body="sum(parts) * ev.n")  # the fix
    with pytest.warns(StepCodeChangedWarning, match=r"new code in step 'render'") as caught:
        resumed = Report().resume(handler.run_id, store=store)
    assert "gather" not in str(caught[0].message)
    assert caught[0].filename == "Report.resume"  # not a temporary file's path
    assert "'render' (edited in" in str(caught[0].message)
    assert await resumed == 60
    assert notebook.RAN == ["gather", "render", "render"]  # gather did not run again
    assert store.latest(handler.run_id).status == "done"


async def test_a_changed_graph_is_refused_with_the_differences(
    tmp_path: Path, notebook: Any
) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    Report = run_cell(notebook, body="1 / 0")
    handler = Report().run(checkpoint=store)
    with pytest.raises(ZeroDivisionError):
        await handler
    Report = run_cell(notebook, render="draw", body="1")
    with pytest.raises(SnapshotError) as caught:
        Report().resume(handler.run_id, store=store)
    message = str(caught.value)
    assert f"cannot resume run {handler.run_id!r}" in message and "Report has changed" in message
    assert "step 'render' is gone" in message and "step 'draw' is new" in message
    assert repr(store) in message
    with pytest.raises(
        SnapshotError, match="is a run of workflow 'ckpt_notebook:Report', not of Counter"
    ):
        Counter().resume(handler.run_id, store=store)


def test_step_code_hashes_name_the_changed_steps(notebook: Any) -> None:
    before = graph_of(run_cell(notebook, body="1")._step_specs())
    same = graph_of(run_cell(notebook, body="1")._step_specs())
    after = graph_of(run_cell(notebook, body="2")._step_specs())
    assert before == same  # a re-run cell with the same code is no change
    assert code_changes(before, after) == ["render"]
    assert all(len(entry["code"]) == 12 for entry in after.values())


async def test_a_run_paused_for_a_human_asks_again(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    handler = Approve().run(checkpoint=store, draft="v2")
    await waiting(handler)
    await handler.cancel()
    resumed = Approve().resume(handler.run_id, store=store)
    async for event in resumed.stream_events(lifecycle=False):
        if isinstance(event, InputRequiredEvent):
            assert event.prefix == "publish v2?"
            resumed.ctx.send_event(HumanResponseEvent(response="approved"))
        if isinstance(event, StopEvent):
            break
    assert await resumed == "v2: approved"
    assert (Approve.prepared, Approve.asked) == (1, 2)


async def test_a_done_run_gives_its_result_again_and_writes_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    handler = Docs().run(checkpoint=store, ids=[3, 1, 2], log=str(tmp_path / "log"))
    assert await handler == [1, 2, 3]
    before = len(store.history(handler.run_id))
    for workflow in (Docs(), Docs(checkpoint=store)):
        again = workflow.resume(handler.run_id, store=store)
        assert await again == [1, 2, 3]
        assert again.status == "done" and again.run_id == handler.run_id
    assert len(store.history(handler.run_id)) == before
    assert (tmp_path / "log").read_text().count("convert") == 3


async def test_at_forks_a_snapshot_into_a_new_run(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    original = Counter().run(checkpoint=store, n=10)
    assert await original == 10
    history = [(s.seq, s.reason, s.status) for s in store.history(original.run_id)]
    Counter.ran = []
    fork = Counter().resume(original.run_id, store=store, at=4)  # after begin and ticks 0-2
    assert fork.run_id != original.run_id
    assert await fork == 10
    assert Counter.ran == list(range(3, 10))
    info = store.run_info(fork.run_id)
    assert info is not None and (info.parent, info.parent_seq) == (original.run_id, 4)
    assert store.history(fork.run_id)[0].reason == "fork"
    assert store.history(fork.run_id)[0].context["store"]["counter"] == 3
    assert [(s.seq, s.reason, s.status) for s in store.history(original.run_id)] == history
    assert f"{original.run_id} #4" in str(store.runs())


async def test_resume_defaults_to_the_workflows_store_then_to_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    memory = MemoryStore()
    handler = Counter(checkpoint=memory).run(n=30, delay=0.002)
    await mid_step(handler, 3)
    await handler.cancel()
    assert await Counter(checkpoint=memory).resume(handler.run_id) == 30
    handler = Counter().run(checkpoint=SQLiteStore(), n=30, delay=0.002)
    await mid_step(handler, 3)
    await handler.cancel()
    assert await Counter().resume(handler.run_id) == 30
    assert (tmp_path / ".notebook_workflows" / "runs.db").exists()
    with pytest.raises(SnapshotError, match="MemoryStore.*has no run"):
        Counter(checkpoint=memory).resume(handler.run_id)


async def test_one_run_continued_twice_at_once_refuses_the_second(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    handler = Counter().run(checkpoint=store, n=20, delay=0.002)
    await mid_step(handler, 3)
    await handler.cancel()
    first = Counter().resume(handler.run_id, store=store)
    with pytest.raises(RunOwnedError, match=f"owned by process {os.getpid()}"):
        Counter().resume(handler.run_id, store=store)
    assert await first == 20
    assert store.latest(handler.run_id).status == "done"


def test_resume_needs_a_running_loop() -> None:
    with pytest.raises(WorkflowRuntimeError, match=r"Counter.resume\(\) needs a running event"):
        Counter().resume("any", store=MemoryStore())
    with pytest.raises(TypeError, match="store must be a snapshot store"):
        asyncio.run(_resume_with("runs.db"))


async def _resume_with(store: Any) -> Any:
    return Counter().resume("any", store=store)


async def test_loading_never_unpickles_what_a_store_holds(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    handler = Counter().run(checkpoint=store, n=2)
    await handler
    conn = store._connection()
    assert conn is not None
    # someone with write access to the file turns the base into a pickle snapshot
    [(key, data)] = conn.execute("SELECT key, data FROM snapshots WHERE kind = 'base'")
    tampered = data.replace('"serializer":"json"', '"serializer":"pickle"')
    assert tampered != data
    conn.execute("UPDATE snapshots SET data = ? WHERE key = ?", (tampered, key))
    with pytest.raises(SnapshotError, match=r"pickle.*can run any code"):
        Counter().resume(handler.run_id, store=store, at=0)  # the base itself


async def test_a_paused_run_shows_as_waiting_in_the_store() -> None:
    store = MemoryStore()
    handler = Approve().run(checkpoint=store, run_id="paused", draft="x")
    await waiting(handler)
    await until(lambda: store.runs()[0].status == "waiting", what="the store showing the pause")
    handler.ctx.send_event(HumanResponseEvent(response="ok"))
    await handler
    assert store.runs()[0].status == "done"


async def test_a_workflow_whose_events_cannot_be_found_again_is_refused_before_it_runs() -> None:
    ran = []

    class Local(Event):
        pass

    class Hidden(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> Local:
            ran.append(1)
            return Local()

        @step
        async def end(self, ev: Local) -> StopEvent:
            return StopEvent()

    with pytest.raises(ContextSerdeError, match="event classes .*Local are defined inside"):
        Hidden().run(checkpoint=MemoryStore())
    assert ran == []


def test_resume_sync_continues_a_run_from_plain_code(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")

    async def start_and_cancel() -> None:
        handler = Counter().run(checkpoint=store, run_id="plain", n=3, stepwise=True)
        await handler.step()
        await handler.cancel()

    asyncio.run(start_and_cancel())
    assert Counter().resume_sync("plain", store=store) is not None
    assert store.latest("plain").status == "done"
    with pytest.raises(WorkflowRuntimeError, match="resume_sync"):
        Counter().resume("plain", store=store)


class Note(Event):
    text: str


async def test_a_step_replaced_on_the_class_is_the_one_resume_runs() -> None:
    class Shaky(Workflow):
        @step
        async def start(self, ev: StartEvent) -> Note:
            return Note(text="a")

        @step
        async def finish(self, ev: Note) -> StopEvent:
            raise ValueError("not yet")

    store = MemoryStore()
    with pytest.raises(ValueError, match="not yet"):
        await Shaky().run(checkpoint=store, run_id="shaky")
    Shaky().draw()  # the class's steps were read (and kept) before the fix

    @step
    async def finish(self: Any, ev: Note) -> StopEvent:
        return StopEvent(result=ev.text.upper())

    with pytest.warns(StepCodeChangedWarning):  # defined in this test file, not in a cell
        Shaky.finish = finish  # type: ignore[method-assign]
        assert await Shaky().resume("shaky", store=store) == "A"
    del Shaky.finish
    assert "finish" not in Shaky._step_specs()  # removed too: the class reads its steps again
