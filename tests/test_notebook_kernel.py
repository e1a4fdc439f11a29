"""Running workflows in a real Jupyter kernel: await, run_sync, stepping, interrupts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_until
from kernel_helpers import Kernel

pytestmark = pytest.mark.kernel

DEFINE = """
import asyncio, time
from notebook_workflows import *

class Tick(Event):
    n: int

class Ticker(Workflow):
    '''Appends a line to a file every few milliseconds, for a long time.'''
    def __init__(self, path, ticks=400):
        super().__init__()
        self.path, self.ticks = path, ticks

    @step
    async def begin(self, ev: StartEvent) -> Tick:
        return Tick(n=0)

    @step
    async def tick(self, ev: Tick) -> Tick | StopEvent:
        with open(self.path, "a") as f:
            f.write(f"{ev.n}\\n")
        await asyncio.sleep(0.02)
        return StopEvent(result=ev.n) if ev.n >= self.ticks else Tick(n=ev.n + 1)

class Sleeper(Workflow):
    '''One step that waits a long time: the loop has nothing to do meanwhile.'''
    @step
    async def nap(self, ev: StartEvent) -> StopEvent:
        if ev.get("started"):
            open(ev.started, "w").close()
        await asyncio.sleep(30)
        return StopEvent(result="woke")

class Hello(Workflow):
    @step
    def greet(self, ev: StartEvent) -> StopEvent:
        print("step says hello to", ev.name)
        return StopEvent(result=f"hi {ev.name}")

class Ask(Workflow):
    @step
    async def ask(self, ev: StartEvent) -> InputRequiredEvent:
        return InputRequiredEvent(prefix="Approve?")

    @step
    async def decide(self, ev: HumanResponseEvent) -> StopEvent:
        return StopEvent(result=ev.response)
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = Kernel(tmp_path_factory.mktemp("kernel"))
    k.check(DEFINE)
    yield k
    k.shutdown()


def test_await_in_a_cell(kernel: Kernel) -> None:
    result = kernel.check("await Hello().run(name='await')")
    assert "'hi await'" in result.text
    assert "step says hello to await" in result.stdout


def test_run_sync_in_a_plain_cell_prints_under_that_cell(kernel: Kernel) -> None:
    result = kernel.check("Hello().run_sync(name='sync')")
    assert "step says hello to sync" in result.stdout  # the step's print, in this cell
    assert "'hi sync'" in result.text


def test_a_stepwise_run_over_several_cells(kernel: Kernel) -> None:
    kernel.check("h = Ticker('/dev/null', ticks=2).run(stepwise=True, run_id='steps')")
    first = kernel.check("await h.step()")
    assert "Tick(n=0)" in first.text
    kernel.check("assert (await h.step()) == [Tick(n=1)]")
    shown = kernel.check("h")
    assert "queued: 1" in shown.text and "tick <- Tick(n=1)" in shown.text
    kernel.check("assert h.steps_done == 2 and h.status == 'running'")
    kernel.check("assert await h == 2 and h.status == 'done'")


def test_a_run_started_without_await_goes_on_between_cells(kernel: Kernel, tmp_path: Path) -> None:
    kernel.check(f"bg = Ticker({str(tmp_path / 'bg.txt')!r}, ticks=3).run()")
    # all four ticks are written while no cell runs
    wait_until(lambda: lines(tmp_path / "bg.txt") >= 4, what="the run's ticks")
    kernel.check("assert await bg == 3 and bg.status == 'done', bg")


def test_run_sync_refuses_a_workflow_that_asks_a_human(kernel: Kernel) -> None:
    result = kernel.run("Ask().run_sync()")
    assert result.error is not None
    assert result.error["ename"] == "WorkflowRuntimeError"
    assert "await workflow.run" in result.error["evalue"]


def test_a_question_is_answered_while_an_await_cell_waits(kernel: Kernel) -> None:
    kernel.check("q = Ask().run()")
    kernel.check(
        "for _ in range(2000):\n"
        "    if q.status == 'waiting': break\n"
        "    await asyncio.sleep(0.01)\n"
        "assert q.status == 'waiting', q"
    )
    kernel.check("q.ctx.send_event(HumanResponseEvent(response='yes'))")
    kernel.check("assert await q == 'yes'")


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def interrupt_and_check(kernel: Kernel, cell: str, path: Path) -> None:
    msg_id = kernel.submit(cell)
    wait_until(lambda: lines(path) >= 5, what="the run's start")
    kernel.interrupt()
    result = kernel.collect(msg_id, timeout=30)
    assert result.error is not None  # the cell reports the interruption
    settled = lines(path)
    time.sleep(0.6)  # thirty ticks' worth
    assert lines(path) <= settled + 1, "steps went on after the interrupt"
    kernel.check("assert run.status == 'cancelled', run.status")


def test_interrupting_an_await_cell_cancels_the_run(kernel: Kernel, tmp_path: Path) -> None:
    path = tmp_path / "await.txt"
    kernel.check(f"run = Ticker({str(path)!r}).run()")
    interrupt_and_check(kernel, "await run", path)


def test_interrupting_a_run_whose_step_waits_long_stops_it_at_once(
    kernel: Kernel, tmp_path: Path
) -> None:
    kernel.check("from notebook_workflows.checkpoint import MemoryStore")
    napping = tmp_path / "napping"
    msg_id = kernel.submit(
        f"nap = Sleeper().run(checkpoint=MemoryStore(), run_id='nap-1', started={str(napping)!r})"
        "\nawait nap"
    )
    wait_until(napping.exists, what="the nap")
    started = time.monotonic()
    kernel.interrupt()
    result = kernel.collect(msg_id, timeout=25)
    assert time.monotonic() - started < 20  # not after the 30 s sleep (generous: a loaded CI)
    assert result.error is not None and result.error["ename"] == "CancelledError"
    assert "await Sleeper().resume('nap-1', store=store)" in "\n".join(result.error["traceback"])
    kernel.check("assert nap.status == 'cancelled', nap.status")


def test_interrupting_run_sync_cancels_the_run(kernel: Kernel, tmp_path: Path) -> None:
    path = tmp_path / "sync.txt"
    cell = (
        "from notebook_workflows import WorkflowHandler\n"
        "_run = WorkflowHandler.__init__\n"
        "def keep(self, driver):\n"
        "    global run\n"
        "    _run(self, driver)\n"
        "    run = self\n"
        "WorkflowHandler.__init__ = keep\n"
        "try:\n"
        f"    Ticker({str(path)!r}).run_sync()\n"
        "finally:\n"
        "    WorkflowHandler.__init__ = _run\n"
    )
    interrupt_and_check(kernel, cell, path)


def test_what_a_run_sync_step_displays_appears_under_its_cell(kernel: Kernel) -> None:
    kernel.check(
        "from IPython.display import display, Markdown\n"
        "class Shows(Workflow):\n"
        "    @step\n"
        "    async def show(self, ev: StartEvent) -> StopEvent:\n"
        "        display(Markdown('**shown by a step**'))\n"
        "        return StopEvent(result='ok')\n"
    )
    result = kernel.check("Shows().run_sync()")
    assert any("shown by a step" in d.get("text/markdown", "") for d in result.data)
