"""The line of status a run awaited in a notebook cell shows: when the engine asks for it, when
it shows, what it says, and how rarely it is updated. The last tests run a real kernel and read
what the cell shows."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import text, until
from kernel_helpers import Kernel

import notebook_workflows
from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, _ports, step
from notebook_workflows import workflow as workflow_module
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.notebook import status
from notebook_workflows.runtime.view import RunView

# -- workflows -----------------------------------------------------------------------------------


class Quick(Workflow):
    @step
    async def only(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="quick")


class Gate(Workflow):
    """Runs until the test opens its gate."""

    def __init__(self, gate: asyncio.Event, **kw: Any) -> None:
        super().__init__(**kw)
        self.gate = gate

    @step
    async def hold(self, ev: StartEvent) -> StopEvent:
        await self.gate.wait()
        return StopEvent(result="opened")


class Link(Event):
    n: int


class Chain(Workflow):
    """``ev.n`` short steps, each giving the loop a moment."""

    @step
    async def begin(self, ev: StartEvent) -> Link:
        return Link(n=ev.n)

    @step
    async def link(self, ev: Link) -> Link | StopEvent:
        await asyncio.sleep(0.0005)
        return Link(n=ev.n - 1) if ev.n > 1 else StopEvent(result="end")


class Outer(Workflow):
    """A step that runs another workflow."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    @step
    async def call(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=await Gate(self.gate).run())


class Broken(Workflow):
    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    @step
    async def parse(self, ctx: Context, ev: StartEvent) -> StopEvent:
        await self.gate.wait()
        raise ValueError("no")


# -- the engine asks the notebook face, unless told not to ---------------------------------------


class Face:
    """A notebook face that records the runs it was asked to follow."""

    def __init__(self) -> None:
        self.followed: list[str] = []

    def status_line(self, handler: Any) -> None:
        self.followed.append(handler.run_id)


@pytest.fixture
def face(monkeypatch: pytest.MonkeyPatch) -> Face:
    """The engine in a kernel (as far as it can tell), talking to a recording face."""
    recording = Face()
    monkeypatch.setattr(workflow_module, "in_notebook_kernel", lambda: True)
    monkeypatch.setattr(_ports, "_notebook_face", lambda: recording)
    return recording


@pytest.fixture
def setting_off() -> Iterator[None]:
    notebook_workflows.settings.progress = False
    try:
        yield
    finally:
        notebook_workflows.settings.progress = True


async def test_a_run_in_a_kernel_asks_the_notebook_face_for_its_status_line(face: Face) -> None:
    await Quick().run(run_id="asked")
    assert face.followed == ["asked"]


async def test_progress_false_leaves_the_status_line_out_of_one_run(face: Face) -> None:
    await Quick().run(run_id="off", progress=False)
    await Quick().run(run_id="on")
    assert face.followed == ["on"]


async def test_progress_carried_by_a_start_event_counts_as_the_run_option(face: Face) -> None:
    # LlamaIndex's agents put every keyword agent.run() does not know into the start event
    await Quick().run(start_event=StartEvent(progress=False), run_id="agent-like")
    assert face.followed == []


async def test_the_setting_leaves_it_out_of_every_run_and_progress_true_overrides_it(
    face: Face, setting_off: None
) -> None:
    await Quick().run(run_id="quiet")
    await Quick().run(run_id="asked-for", progress=True)
    assert face.followed == ["asked-for"]


async def test_resumed_runs_follow_the_setting(face: Face) -> None:
    store, gate = MemoryStore(), asyncio.Event()
    h = Gate(gate).run(run_id="paused", checkpoint=store)
    await until(lambda: "hold" in h.view().running, what="the step running")
    await h.cancel()
    gate.set()
    assert await Gate(gate).resume("paused", store=store) == "opened"
    assert face.followed == ["paused", "paused"]
    notebook_workflows.settings.progress = False
    try:
        await Gate(gate).resume("paused", store=store)  # a finished run shown again
    finally:
        notebook_workflows.settings.progress = True
    assert face.followed == ["paused", "paused"]


async def test_outside_a_kernel_the_face_is_never_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    recording = Face()
    monkeypatch.setattr(_ports, "_notebook_face", lambda: recording)
    await Quick().run(progress=True)
    assert recording.followed == []


async def test_progress_takes_a_bool_or_none() -> None:
    with pytest.raises(TypeError, match=r"run\(progress=...\) is True, False or None, got 'no'"):
        Quick().run(progress="no")


def test_a_misspelt_setting_is_an_error_naming_the_settings() -> None:
    with pytest.raises(AttributeError, match="no setting 'progres'; its settings are: progress"):
        notebook_workflows.settings.progres = False  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="progress is True or False, got 0"):
        notebook_workflows.settings.progress = 0  # type: ignore[assignment]
    assert notebook_workflows.settings.progress is True


# -- the line itself, with a recording display -------------------------------------------------


class Events:
    """IPython's ``shell.events``, enough for the cell count."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Any]] = {}

    def register(self, name: str, callback: Any) -> None:
        self.callbacks.setdefault(name, []).append(callback)


@dataclasses.dataclass
class Shown:
    display_id: str
    update: bool
    text: str
    at: float


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[Shown]:
    """What the lines publish, with short delays so that the tests run fast."""
    published: list[Shown] = []

    def publish(bundle: dict[str, str], display_id: str, *, update: bool) -> None:
        assert list(bundle) == ["text/html"]
        line = text(bundle["text/html"]).strip()
        published.append(Shown(display_id, update, line, time.monotonic()))

    monkeypatch.setattr(status, "_publish", publish)
    monkeypatch.setattr(status, "SHOW_AFTER", 0.05)
    monkeypatch.setattr(status, "INTERVAL", 0.05)
    return published


def cells() -> status._CellCount:
    return status._CellCount(Events())


async def test_a_quick_run_shows_nothing(shown: list[Shown]) -> None:
    line = status.StatusLine(h := Quick().run(), cells())
    assert await h == "quick"
    await asyncio.sleep(3 * status.SHOW_AFTER)  # the moment it would have shown has passed
    assert shown == [] and not line.shown


async def test_a_long_run_shows_a_line_that_ends_as_its_summary_before_the_await_returns(
    shown: list[Shown],
) -> None:
    gate = asyncio.Event()
    h = Gate(gate).run(run_id="long")
    line = status.StatusLine(h, cells())
    await until(lambda: shown, what="the line shown")
    first = shown[0]
    assert not first.update and first.display_id == line.display_id
    assert first.text.startswith("run 'long' · 0 steps · 0.")
    assert first.text.endswith(" s · running hold")
    gate.set()
    assert await h == "opened"
    last = shown[-1]  # already there when the await returns: the summary sits above the result
    assert last.update and last.display_id == first.display_id
    assert last.text.startswith("run 'long' · 1 step · ") and last.text.endswith(" s · done")


async def test_updates_come_from_a_timer_not_from_the_steps(shown: list[Shown]) -> None:
    started = time.monotonic()
    h = Chain().run(n=400, run_id="chain")
    line = status.StatusLine(h, cells())
    assert await h == "end"
    took = time.monotonic() - started
    assert line.shown and h.steps_done == 401
    ticks = (took - status.SHOW_AFTER) / status.INTERVAL
    assert len(shown) <= ticks + 3  # the first display, one per interval, the summary
    assert len(shown) < h.steps_done / 20


async def test_a_cell_that_ends_before_the_line_would_show_gets_none(shown: list[Shown]) -> None:
    gate, count = asyncio.Event(), cells()
    h = Gate(gate).run()
    line = status.StatusLine(h, count)
    count._ended()  # the cell ended without awaiting the run (``h = w.run()`` alone)
    await asyncio.sleep(3 * status.SHOW_AFTER)
    gate.set()
    await h
    assert shown == [] and not line.shown


async def test_a_shown_line_stops_following_once_its_cell_ends_and_still_gets_its_summary(
    shown: list[Shown],
) -> None:
    gate, count = asyncio.Event(), cells()
    h = Gate(gate).run(run_id="left")
    status.StatusLine(h, count)
    await until(lambda: shown, what="the line shown")
    count._ended()
    await until(lambda: "no cell waits for it" in shown[-1].text, what="the last live update")
    before = len(shown)
    await asyncio.sleep(3 * status.INTERVAL)
    assert len(shown) == before  # no more updates into a cell that has ended
    gate.set()
    await h
    assert shown[-1].text.endswith(" s · done") and len(shown) == before + 1


async def test_a_run_whose_monitor_is_shown_gets_no_line(shown: list[Shown]) -> None:
    gate = asyncio.Event()
    h = Gate(gate).run()
    status.monitor_shown(h)
    line = status.StatusLine(h, cells())
    await asyncio.sleep(3 * status.SHOW_AFTER)
    gate.set()
    await h
    assert shown == [] and not line.shown


async def test_a_stepwise_run_gets_no_line(shown: list[Shown]) -> None:
    h = Quick().run(stepwise=True)
    line = status.StatusLine(h, cells())
    await asyncio.sleep(3 * status.SHOW_AFTER)
    assert shown == [] and not line.shown
    await h


async def test_a_failed_run_ends_its_line_saying_where(shown: list[Shown]) -> None:
    gate = asyncio.Event()
    h = Broken(gate).run(run_id="broken")
    status.StatusLine(h, cells())
    await until(lambda: shown, what="the line shown")
    gate.set()
    with pytest.raises(ValueError):
        await h
    assert shown[-1].text.endswith(" s · failed in parse")


async def test_follow_shows_runs_started_in_a_cell_but_not_by_a_step(
    monkeypatch: pytest.MonkeyPatch, shown: list[Shown]
) -> None:
    class Shell:
        events = Events()

    shell = Shell()
    monkeypatch.setattr(status, "_shell", lambda: shell)
    monkeypatch.setattr(status, "_count", None)
    monkeypatch.setattr(workflow_module, "in_notebook_kernel", lambda: True)
    made: list[Any] = []
    real = status.follow
    monkeypatch.setattr(status, "follow", lambda handler: made.append(real(handler)))
    gate = asyncio.Event()
    h = Outer(gate).run(run_id="outer")
    await until(lambda: len(made) == 2, what="the inner run started")
    gate.set()
    assert await h == "opened"
    outer, inner = made
    assert outer is not None and outer.handler is h
    assert inner is None  # the step's run: the outer run's line tells


async def test_no_line_for_a_run_started_while_no_cell_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Shell:
        events = Events()

    shell = Shell()
    monkeypatch.setattr(status, "_shell", lambda: shell)
    monkeypatch.setattr(status, "_count", None)
    count = status._cells()
    assert count is not None and count.executing  # hooked in by a run in a cell
    count._ended()
    assert status.follow(Quick().run()) is None  # a task the last cell left behind
    count._started()
    h = Quick().run()
    assert status.follow(h) is not None
    await h
    assert status._cells() is count  # hooked in once


# -- what the line says --------------------------------------------------------------------------


def view(**fields: Any) -> RunView:
    base: dict[str, Any] = dict(
        workflow="Score",
        run_id="score-1",
        status="running",
        steps_done=12,
        step_runs={},
        step_seconds={},
        flow={},
        running=(),
        waiting=(),
        queued={},
        failed={},
        questions=(),
        elapsed=3.42,
    )
    return RunView(**{**base, **fields})


def test_the_line_names_the_run_its_steps_its_time_and_what_runs() -> None:
    assert status.status_text(view(running=("score",) * 3 + ("load",))) == (
        "run 'score-1' · 12 steps · 3.4 s · running score (3 calls), load"
    )
    assert status.status_text(view(steps_done=1, elapsed=75.2, status="done", finished=True)) == (
        "run 'score-1' · 1 step · 1 min 15 s · done"
    )
    assert status.status_text(view(status="waiting", questions=("Approve?",))).endswith(
        "waiting for an answer: Approve?"
    )
    assert status.status_text(view(status="cancelled", finished=True)).endswith(" · cancelled")


def test_a_long_fan_out_gets_a_bar_of_its_calls() -> None:
    line = status.StatusLine.__new__(status.StatusLine)
    line._fanout = None
    small = view(running=("score",) * 2, queued={"score": 5}, step_runs={"score": 40})
    assert "▕" not in line.text(small)  # seven calls left: no bar
    fan = view(running=("score",) * 4, queued={"score": 56}, step_runs={"score": 40})
    assert line.text(fan) == (
        "run 'score-1' · 12 steps · 3.4 s · running score (4 calls) ▕████████░░░░░░░░░░░░▏ 40/100"
    )
    tail = view(running=("score", "merge"), step_runs={"score": 99})
    assert line.text(tail).endswith("score ▕███████████████████░▏ 99/100, merge")  # kept to its end
    assert "▕" not in line.text(view(running=("merge",), step_runs={"score": 100}))


# -- in a real kernel: what the cell shows -------------------------------------------------------

DEFINE = """
import asyncio
import notebook_workflows
from notebook_workflows import *

class Slow(Workflow):
    @step
    async def first(self, ev: StartEvent) -> Event:
        await asyncio.sleep(ev.pause)
        return Event()

    @step
    async def second(self, ev: Event) -> StopEvent:
        print("second step")
        return StopEvent(result="slept")
"""


@dataclasses.dataclass
class Cell:
    """What a cell showed, in the order it came: ``(message type, text, html)``."""

    shown: list[tuple[str, str, str]]
    error: dict[str, Any] | None

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.shown]

    def lines(self) -> list[str]:
        """The texts the status line showed, the first display and its updates."""
        return [t.strip() for _, t, markup in self.shown if 'class="nw-status"' in markup]


def run_cell(kernel: Kernel, code: str, timeout: float = 60, interrupt: bool = False) -> Cell:
    """Run ``code`` and read what the cell shows; ``interrupt``: interrupt the kernel as soon
    as the status line shows."""
    msg_id = kernel.submit(code)
    cell = Cell([], None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kernel.client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind in ("display_data", "update_display_data", "execute_result"):
            data = content["data"]
            markup = data.get("text/html", "")
            cell.shown.append((kind, text(markup) or data.get("text/plain", ""), markup))
            if interrupt and cell.lines():
                kernel.interrupt()
                interrupt = False
        elif kind == "stream":
            cell.shown.append(("stream", content["text"], ""))
        elif kind == "error":
            cell.error = content
        elif kind == "status" and content["execution_state"] == "idle":
            return cell
    raise TimeoutError(f"the cell did not finish in {timeout} s")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = Kernel(tmp_path_factory.mktemp("status"))
    k.check(DEFINE)
    yield k
    k.shutdown()


@pytest.mark.kernel
def test_an_awaited_cell_shows_the_line_and_then_the_summary_above_the_result(
    kernel: Kernel,
) -> None:
    cell = run_cell(kernel, "await Slow().run(pause=1.0, run_id='slow-1')")
    assert cell.error is None
    kinds = cell.kinds
    assert kinds[0] == "display_data" and kinds[-1] == "execute_result"
    lines = cell.lines()
    assert lines[0].startswith("run 'slow-1' · 0 steps · 0.")
    assert lines[0].endswith(" s · running first")
    assert lines[-1].startswith("run 'slow-1' · 2 steps · 1.") and lines[-1].endswith(" s · done")
    assert kinds[-2] == "update_display_data"  # the summary, sent before the result
    assert "'slept'" in cell.shown[-1][1]


@pytest.mark.kernel
def test_a_quick_run_or_a_run_told_not_to_shows_only_its_result(kernel: Kernel) -> None:
    quick = run_cell(kernel, "await Slow().run(pause=0)")
    assert quick.kinds == ["stream", "execute_result"]
    off = run_cell(kernel, "await Slow().run(pause=0.8, progress=False)")
    assert off.kinds == ["stream", "execute_result"]
    kernel.check("notebook_workflows.settings.progress = False")
    try:
        quiet = run_cell(kernel, "await Slow().run(pause=0.8)")
    finally:
        kernel.check("notebook_workflows.settings.progress = True")
    assert quiet.kinds == ["stream", "execute_result"]


@pytest.mark.kernel
def test_run_sync_in_a_plain_cell_shows_the_line_too(kernel: Kernel) -> None:
    cell = run_cell(kernel, "Slow().run_sync(pause=0.8, run_id='sync-1')")
    assert cell.error is None
    assert cell.lines()[-1].startswith("run 'sync-1' · 2 steps · ")
    assert cell.lines()[-1].endswith(" s · done")
    assert cell.kinds[-2:] == ["update_display_data", "execute_result"]


@pytest.mark.kernel
def test_a_run_left_running_by_its_cell_shows_nothing_there_or_later(kernel: Kernel) -> None:
    started = run_cell(kernel, "h = Slow().run(pause=0.8)")
    assert started.shown == []
    later = run_cell(kernel, "await asyncio.sleep(1.2); h.status")
    assert "'done'" in later.shown[-1][1]
    assert later.lines() == [] and "display_data" not in later.kinds


@pytest.mark.kernel
def test_a_cell_showing_the_monitor_gets_no_status_line(kernel: Kernel) -> None:
    cell = run_cell(kernel, "h = Slow().run(pause=0.8)\ndisplay(h.monitor())\nawait h")
    assert cell.error is None
    assert "display_data" in cell.kinds  # the monitor
    assert cell.lines() == []


@pytest.mark.kernel
def test_an_interrupted_cell_ends_its_line_saying_the_run_was_cancelled(kernel: Kernel) -> None:
    cell = run_cell(kernel, "await Slow().run(pause=30, run_id='stopped')", interrupt=True)
    assert cell.error is not None
    assert cell.lines()[-1].startswith("run 'stopped' · 0 steps · ")
    assert cell.lines()[-1].endswith(" s · cancelled")
