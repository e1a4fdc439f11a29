"""What a person sees when a run goes wrong: their own frames, never ours, and how to go on.

In a notebook kernel (read as the cell shows it: ``ename``, ``evalue`` and the traceback lines):
a failed step shows the cell's line and the step's own frame, no frame of this package (nor of
pydantic, for an event that could not be made), and ends with the line that resumes the run
when it is checkpointed; ``step()``, ``resume``, ``run_sync``, the store and an interrupted
cell likewise; the monitor's Cancel ends the awaiting cell with one line; resuming after
editing a step in a cell says so in one plain line, not a warning. In plain Python the usual
traceback keeps the step's frame and the resume line.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import re
import sys
import tempfile
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import until, wait_until
from kernel_helpers import CellResult, Kernel

import notebook_workflows
from notebook_workflows import (
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    step,
)
from notebook_workflows._frames import without_library
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore, StepCodeChangedWarning

needs_notes = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="exception notes exist (and tracebacks show them) from 3.11"
)
PACKAGE = os.path.dirname(notebook_workflows.__file__)
ANSI = re.compile(r"\x1b\[[0-9;]*m")

DEFINE = """
import asyncio
from notebook_workflows import *
from notebook_workflows.checkpoint import MemoryStore, SQLiteStore

class Parsed(Event):
    size: int

class Summarize(Workflow):
    @step
    async def load(self, ev: StartEvent) -> Parsed:
        return Parsed(size=ev.get("size", 3))

    @step
    async def summarize(self, ev: Parsed) -> StopEvent:
        raise ValueError(f"cannot summarize {ev.size} pages")

class Slow(Workflow):
    @step
    async def nap(self, ev: StartEvent) -> StopEvent:
        if ev.get("started"):
            open(ev.started, "w").close()
        await asyncio.sleep(30)
        return StopEvent(result="woke")

class NeedsPath(Workflow):
    @step
    async def load(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=ev.path)

memory = MemoryStore()
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = Kernel(tmp_path_factory.mktemp("tracebacks"))
    k.check(DEFINE)
    yield k
    k.shutdown()


def shown(result: CellResult) -> str:
    """The error as the cell shows it, without colours."""
    assert result.error is not None, f"the cell did not fail: {result}"
    return ANSI.sub("", "\n".join(result.error["traceback"]))


def assert_no_library_frame(text: str) -> None:
    assert PACKAGE not in text and "notebook_workflows/" not in text, text
    assert "pydantic/" not in text.replace("errors.pydantic.dev/", ""), text  # no frame of it


# -- in a notebook kernel -----------------------------------------------------------------------


@pytest.mark.kernel
def test_a_failed_step_shows_the_step_and_ends_with_the_line_that_resumes_the_run(
    kernel: Kernel,
) -> None:
    result = kernel.run("await Summarize().run(checkpoint=memory, run_id='sum-1')")
    text = shown(result)
    assert result.error is not None and result.error["ename"] == "ValueError"
    assert "in Summarize.summarize(self, ev)" in text  # the step's own frame
    assert 'raise ValueError(f"cannot summarize {ev.size} pages")' in text
    assert "await Summarize().run(checkpoint=memory, run_id='sum-1')" in text  # the cell's line
    assert_no_library_frame(text)
    lines = text.rstrip().splitlines()
    assert lines[-3] == "in step 'summarize' of Summarize (run 'sum-1')"
    assert lines[-1] == (
        "await Summarize().resume('sum-1', store=store) (store: the MemoryStore it ran with)"
    )
    assert text.count(".resume(") == 1


@pytest.mark.kernel
def test_the_resume_line_names_a_sqlite_store_as_it_is_opened_and_the_default_one_not_at_all(
    kernel: Kernel,
) -> None:
    other = shown(kernel.run("await Summarize().run(checkpoint=SQLiteStore('other.db'))"))
    assert re.search(
        r"await Summarize\(\)\.resume\('summarize-\w+', store=SQLiteStore\('other.db'\)\)$", other
    )
    default = shown(kernel.run("await Summarize().run(checkpoint=SQLiteStore(), run_id='sum-2')"))
    assert default.rstrip().endswith("\nawait Summarize().resume('sum-2')")
    # the line works as it is written
    kernel.check(
        "class Summarize(Summarize):\n"
        "    @step\n"
        "    async def summarize(self, ev: Parsed) -> StopEvent:\n"
        "        return StopEvent(result=ev.size)\n"
    )
    assert kernel.check("await Summarize().resume('sum-2')").text.strip().endswith("3")
    kernel.check(DEFINE)


@pytest.mark.kernel
def test_step_resume_run_sync_and_the_store_show_no_frame_of_ours(kernel: Kernel) -> None:
    stepped = kernel.run("h = Summarize().run(stepwise=True)\nawait h.step()\nawait h.step()")
    text = shown(stepped)
    assert "in Summarize.summarize(self, ev)" in text and "----> 3 await h.step()" in text
    assert_no_library_frame(text)

    refused = shown(kernel.run("await Summarize().resume('no-such-run', store=memory)"))
    assert "has no run 'no-such-run'" in refused
    assert_no_library_frame(refused)

    blocking = shown(kernel.run("NeedsPath().run_sync(run_id='path-1')"))
    assert "in NeedsPath.load(self, ev)" in blocking and "the run was not given 'path'" in blocking
    assert_no_library_frame(blocking)

    stored = shown(kernel.run("ctx = Context(Summarize())\nawait ctx.store.set('sock', object())"))
    assert "cannot store sock" in stored and "----> 2 await ctx.store.set" in stored
    assert_no_library_frame(stored)


@pytest.mark.kernel
def test_an_event_that_cannot_be_made_in_a_step_shows_the_steps_line_not_pydantic(
    kernel: Kernel,
) -> None:
    result = kernel.run("await Summarize().run(size='many')")
    text = shown(result)
    assert result.error is not None and result.error["ename"] == "ValidationError"
    assert 'return Parsed(size=ev.get("size", 3))' in text
    assert "in step 'load' of Summarize" in text
    assert_no_library_frame(text)


@pytest.mark.kernel
def test_cancel_in_the_monitor_ends_the_awaiting_cell_with_one_line(kernel: Kernel) -> None:
    result = kernel.run(
        "h = Slow().run(checkpoint=memory, run_id='slow-1')\n"
        "monitor = h.monitor()\n"
        "asyncio.get_running_loop().call_later(0.3, monitor.cancel_button.click)\n"
        "await h"
    )
    assert result.error is not None and result.error["ename"] == "WorkflowCancelledByUser"
    assert result.error["traceback"] == [
        "run 'slow-1' of Slow was cancelled from the run monitor; go on where it stopped with "
        "await Slow().resume('slow-1', store=store) (store: the MemoryStore it ran with)"
    ]
    kernel.check("assert h.status == 'cancelled'")


@pytest.mark.kernel
def test_an_interrupted_cell_shows_no_frame_of_ours_and_how_to_go_on(
    kernel: Kernel, tmp_path: Path
) -> None:
    napping = tmp_path / "napping"
    msg_id = kernel.submit(
        f"h = Slow().run(checkpoint=memory, run_id='slow-2', started={str(napping)!r})\nawait h"
    )
    wait_until(napping.exists, what="the step asleep")
    kernel.interrupt()
    result = kernel.collect(msg_id, timeout=25)
    text = shown(result)
    assert result.error is not None and result.error["ename"] == "CancelledError"
    assert "run 'slow-2' of Slow was cancelled (0 steps done)" in text
    assert text.rstrip().endswith(
        "await Slow().resume('slow-2', store=store) (store: the MemoryStore it ran with)"
    )
    assert "----> 2 await h" in text
    assert_no_library_frame(text)


@pytest.mark.kernel
def test_resuming_after_editing_a_step_in_a_cell_says_so_in_one_plain_line(
    kernel: Kernel,
) -> None:
    kernel.run("await Summarize().run(checkpoint=memory, run_id='edit-1')")
    kernel.check(
        "class Summarize(Summarize):\n"
        "    @step\n"
        "    async def summarize(self, ev: Parsed) -> StopEvent:\n"
        "        return StopEvent(result=f'{ev.size} pages')\n"
    )
    result = kernel.check("await Summarize().resume('edit-1', store=memory)")
    assert result.stderr == ""  # no warning
    assert result.stdout == (
        "resuming run 'edit-1' from snapshot 2 with new code in step 'summarize' "
        "(edited in this notebook); completed steps do not run again\n"
    )
    assert "'3 pages'" in result.text
    kernel.check(DEFINE)


# -- in plain Python ----------------------------------------------------------------------------


class Parsed(Event):
    size: int


class Summarize(Workflow):
    @step
    async def load(self, ev: StartEvent) -> Parsed:
        return Parsed(size=ev.get("size", 3))

    @step
    async def summarize(self, ev: Parsed) -> StopEvent:
        raise ValueError(f"cannot summarize {ev.size} pages")


async def failure(handler: Any) -> BaseException:
    with pytest.raises(Exception) as caught:
        await handler
    return caught.value


@needs_notes
async def test_in_plain_python_the_traceback_keeps_the_step_and_ends_with_the_resume_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import traceback

    monkeypatch.chdir(tmp_path)
    with SQLiteStore("runs/other.db") as store:
        error = await failure(Summarize().run(checkpoint=store, run_id="sum-1"))
    printed = "".join(traceback.format_exception(error))
    assert 'raise ValueError(f"cannot summarize {ev.size} pages")' in printed
    assert printed.rstrip().splitlines()[-3:] == [
        "in step 'summarize' of Summarize (run 'sum-1')",
        "the run is checkpointed: fix the step, then go on where it stopped with",
        "await Summarize().resume('sum-1', store=SQLiteStore('runs/other.db'))",
    ]


@needs_notes
async def test_a_run_that_writes_no_checkpoints_names_no_resume_line() -> None:
    error = await failure(Summarize().run(run_id="sum-2"))
    assert error.__notes__ == ["in step 'summarize' of Summarize (run 'sum-2')"]


class Outer(Workflow):
    def __init__(self, inner_store: MemoryStore) -> None:
        super().__init__()
        self.inner_store = inner_store

    @step
    async def delegate(self, ev: StartEvent) -> StopEvent:
        inner = Summarize().run(checkpoint=self.inner_store, run_id="inner-1")
        return StopEvent(result=await inner)


@needs_notes
async def test_an_error_through_two_runs_ends_with_one_resume_line_the_outer_runs() -> None:
    store = MemoryStore()
    error = await failure(Outer(store).run(checkpoint=store, run_id="outer-1"))
    lines = "\n".join(error.__notes__).splitlines()
    assert [line for line in lines if ".resume(" in line] == [
        "await Outer().resume('outer-1', store=store) (store: the MemoryStore it ran with)"
    ]
    assert "in step 'summarize' of Summarize (run 'inner-1')" in lines
    assert "in step 'delegate' of Outer (run 'outer-1')" in lines


async def test_the_failed_steps_traceback_without_the_library_is_the_steps_own() -> None:
    error = await failure(Summarize().run(size=3))
    tb = without_library(error.__traceback__)
    names = []
    while tb is not None:
        assert not tb.tb_frame.f_code.co_filename.startswith(PACKAGE)
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert names == ["failure", "summarize"]  # this test's await, then the step


async def test_an_error_shown_for_people_still_pickles() -> None:
    error = await failure(Summarize().run(checkpoint=MemoryStore(), run_id="sum-3"))
    assert hasattr(error, "_render_traceback_")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.__notes__ == error.__notes__


class Slow(Workflow):
    @step
    async def nap(self, ev: StartEvent) -> StopEvent:
        await asyncio.sleep(30)
        return StopEvent(result="woke")


@needs_notes
async def test_a_cancel_its_user_asked_for_shows_as_one_line_naming_the_run_and_the_way_on() -> (
    None
):
    handler = Slow().run(checkpoint=MemoryStore(), run_id="slow-1")
    await until(lambda: handler.view().running, what="the step running")
    await handler.cancel()
    error = await failure(handler)
    assert isinstance(error, WorkflowCancelledByUser)
    assert str(error) == "run 'slow-1' of Slow was cancelled with handler.cancel()"
    assert error._render_traceback_() == [  # type: ignore[attr-defined]
        "run 'slow-1' of Slow was cancelled with handler.cancel(); go on where it stopped with "
        "await Slow().resume('slow-1', store=store) (store: the MemoryStore it ran with)"
    ]
    assert error.__notes__[-1].endswith(
        "await Slow().resume('slow-1', store=store) (store: the MemoryStore it ran with)"
    )


CELL = """
from notebook_workflows import StartEvent, StopEvent, Workflow, step

class Edited(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=FACTOR * 2)
"""


def define(module: types.ModuleType, factor: int, filename: str) -> Any:
    exec(compile(CELL.replace("FACTOR", str(factor)), filename, "exec"), module.__dict__)
    return module.Edited


@pytest.fixture
def cell_module() -> Iterator[types.ModuleType]:
    module = types.ModuleType("edited_cells")
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


async def test_a_step_edited_in_a_cell_of_this_kernel_is_named_in_one_plain_line(
    cell_module: types.ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = os.path.join(tempfile.gettempdir(), f"ipykernel_{os.getpid()}")  # as ipykernel names it
    store = MemoryStore()
    handler = define(cell_module, 1, os.path.join(cells, "1.py"))().run(checkpoint=store)
    assert await handler == 2
    Edited = define(cell_module, 10, os.path.join(cells, "2.py"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning
        resumed = Edited().resume(handler.run_id, store=store, at=0)
    assert await resumed == 20
    assert capsys.readouterr().out == (
        f"forking run {handler.run_id!r} from snapshot 0 with new code in step 'go' "
        "(edited in this notebook); completed steps do not run again\n"
    )


async def test_a_step_whose_code_changed_elsewhere_still_warns(
    cell_module: types.ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    other_kernel = os.path.join(tempfile.gettempdir(), f"ipykernel_{os.getpid() + 1}", "1.py")
    store = MemoryStore()
    handler = define(cell_module, 1, "pipeline.py")().run(checkpoint=store)
    assert await handler == 2
    for filename in (other_kernel, "pipeline.py"):
        Edited = define(cell_module, 10 if filename == other_kernel else 100, filename)
        with pytest.warns(StepCodeChangedWarning, match="new code in step 'go'"):
            resumed = Edited().resume(handler.run_id, store=store, at=0)
        await resumed
    assert capsys.readouterr().out == ""


class Sleepy(Workflow):
    pause = 30.0  # seconds the step sleeps

    @step
    async def nap(self, ev: StartEvent) -> StopEvent:
        await asyncio.sleep(Sleepy.pause)
        return StopEvent(result="woke")


@needs_notes
async def test_a_checkpointed_run_out_of_time_says_how_to_go_on_and_the_line_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from notebook_workflows import WorkflowTimeoutError

    store = MemoryStore()
    error = await failure(Sleepy(timeout=0.2).run(checkpoint=store, run_id="late-1"))
    assert isinstance(error, WorkflowTimeoutError)
    assert error.__notes__ == [
        "the run is checkpointed: go on where it stopped with\n"
        "await Sleepy().resume('late-1', store=store) (store: the MemoryStore it ran with)"
    ]
    monkeypatch.setattr(Sleepy, "pause", 0.0)
    assert await Sleepy().resume("late-1", store=store) == "woke"
