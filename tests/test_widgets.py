"""RunMonitor: what the live view holds during and after a run, without a browser.

The widgets here have no kernel behind them (their comms go nowhere), so these tests read the
widget models directly: what a browser would draw. ``test_browser.py`` drives the real thing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import text, until, wait_until, words

from notebook_workflows import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledError,
    step,
)
from notebook_workflows._loop import portal
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.widgets import LOG_BURST, REFRESH_INTERVAL, RunMonitor

HAS_DOT = shutil.which("dot") is not None


class Work(Event):
    i: int


class Done(Event):
    i: int
    value: int


class Fan(Workflow):
    """Three workers, a join, a question for a human, a decision."""

    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Work | None:
        await ctx.store.set("items", ev.n)
        for i in range(ev.n):
            ctx.send_event(Work(i=i))
        return None

    @step(num_workers=3)
    async def work(self, ctx: Context, ev: Work) -> Done:
        await asyncio.sleep(0.01)
        return Done(i=ev.i, value=ev.i * 10)

    @step
    async def join(self, ctx: Context, ev: Done) -> InputRequiredEvent | None:
        got = ctx.collect_events(ev, [Done] * await ctx.store.get("items"))
        if got is None:
            return None
        await ctx.store.set("total", sum(d.value for d in got))
        return InputRequiredEvent(prefix="Approve the total?")

    @step
    async def decide(self, ctx: Context, ev: HumanResponseEvent) -> StopEvent:
        total = await ctx.store.get("total")
        return StopEvent(result=f"{ev.response}: {total}")


class Chain(Workflow):
    """The benchmark's chain: one step run ``n`` times."""

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Work:
        await ctx.store.set("n", ev.n)
        return Work(i=0)

    @step
    async def loop(self, ctx: Context, ev: Work) -> Work | StopEvent:
        await ctx.store.set("counter", ev.i + 1)
        if ev.i + 1 >= await ctx.store.get("n"):
            return StopEvent(result=ev.i + 1)
        return Work(i=ev.i + 1)


class Explode(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Work:
        await ctx.store.set("started", True)
        return Work(i=1)

    @step
    async def explode(self, ev: Work) -> StopEvent:
        raise ValueError(f"boom at {ev.i}")


class Slow(Workflow):
    @step
    async def wait(self, ev: StartEvent) -> StopEvent:
        await asyncio.sleep(30)
        return StopEvent(result="late")


class TwoQuestions(Workflow):
    @step
    async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
        first = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Name?")
        )
        second = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Colour?")
        )
        return StopEvent(result=f"{first.response}/{second.response}")


class Chatty(Workflow):
    """Writes ``n`` events to the stream, slowly enough for the log to follow each."""

    @step
    async def talk(self, ctx: Context, ev: StartEvent) -> StopEvent:
        for i in range(ev.n):
            ctx.write_event_to_stream(Work(i=i))
            await asyncio.sleep(0)
        return StopEvent(result=ev.n)


# -- helpers ----------------------------------------------------------------------------------


async def drawn(monitor: RunMonitor) -> None:
    """Wait until the newest graph is drawn (drawing runs on its own thread)."""
    await until(monitor._graph.idle)


# -- after a run ------------------------------------------------------------------------------


async def test_after_a_run_it_shows_status_counts_store_log_and_result() -> None:
    handler = Fan().run(run_id="fan-1", n=3)
    monitor = handler.monitor()
    await until(lambda: monitor.answer is not None)
    monitor.answer.value = "yes"
    monitor.send.click()
    assert await handler == "yes: 30"
    await drawn(monitor)

    header = words(monitor.header.value)
    assert "Fan run fan-1 done" in header
    assert "8 steps done" in header
    assert "result: 'yes: 30'" in header
    store = words(monitor.store.value)
    assert "items int 3" in store and "total int 30" in store
    log = words(monitor.log.value)
    for seen in ("StartEvent(n=3) → Work(i=0), Work(i=1), Work(i=2)", "Work(i=2) → Done(i=2"):
        assert seen in log
    assert "InputRequiredEvent(prefix='Approve the total?')" in log
    assert "(you) HumanResponseEvent HumanResponseEvent(response='yes')" in log
    assert log.index("StopEvent(result='yes: 30')") > log.index("HumanResponseEvent")  # newest last
    assert "RunStatusChanged done" in log
    assert repr(monitor) == "RunMonitor(Fan, run 'fan-1', done, 8 steps)"
    assert monitor.cancel_button.disabled
    if HAS_DOT:
        assert "<svg" in monitor.graph.value and "decide" in monitor.graph.value


async def test_a_monitor_made_after_the_run_shows_the_final_state() -> None:
    handler = Chain().run(run_id="late", n=5)
    assert await handler == 5
    monitor = RunMonitor(handler)
    await drawn(monitor)
    assert "done" in words(monitor.header.value)
    assert "counter int 5" in words(monitor.store.value)
    assert "StopEvent(result=5)" in words(monitor.log.value)  # from the run's stream
    assert repr(monitor) == "RunMonitor(Chain, run 'late', done, 6 steps)"


class Verbose(Workflow):
    @step
    async def write(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="first line of a long report. " + "more words " * 40 + "THE END")


async def test_a_long_result_is_cut_at_its_end_and_opens_to_all_of_it() -> None:
    handler = Verbose().run(run_id="long-result")
    monitor = handler.monitor()
    await handler
    summary = re.search(r"<summary>(.*?)</summary>", monitor.header.value, re.S)
    assert summary is not None
    shown = words(summary.group(1))
    assert shown.startswith("✔ result: 'first line of a long report. more words")
    assert "THE END" not in shown and "…" in shown and "show all" in shown
    assert "THE END'" in text(monitor.header.value.split("</summary>", 1)[1])  # in full


async def test_a_failed_step_is_named_with_its_error_and_traceback() -> None:
    handler = Explode().run(run_id="bad")
    monitor = handler.monitor()
    with pytest.raises(ValueError, match="boom at 1"):
        await handler
    header = words(monitor.header.value)
    assert "failed" in header
    assert "step explode failed: ValueError: boom at 1" in header
    assert "traceback" in header and "raise ValueError" in text(monitor.header.value)
    monitor._refresh()  # a later refresh: the error has been re-raised here meanwhile
    assert "in test_a_failed_step" not in text(monitor.header.value)  # still the step's
    log = words(monitor.log.value)
    assert "StepFailed Work(i=1) ✖ ValueError: boom at 1" in log
    assert "RunStatusChanged failed" in log
    assert repr(monitor) == "RunMonitor(Explode, run 'bad', failed, 1 step)"


async def test_the_cancel_button_cancels_the_run() -> None:
    handler = Slow().run(run_id="slow")
    monitor = handler.monitor()
    await until(lambda: "running" in monitor.header.value and "wait" in monitor.header.value)
    assert not monitor.cancel_button.disabled
    monitor.cancel_button.click()
    with pytest.raises(WorkflowCancelledError):
        await handler
    header = words(monitor.header.value)
    assert "cancelled: cancelled from the run monitor" in header
    assert monitor.cancel_button.disabled
    assert repr(monitor) == "RunMonitor(Slow, run 'slow', cancelled, 0 steps)"


async def test_while_a_step_runs_the_progress_line_names_it() -> None:
    handler = Slow().run(run_id="busy")
    monitor = handler.monitor()
    await until(lambda: "1 running (wait)" in words(monitor.header.value))
    if HAS_DOT:
        await until(lambda: "running" in monitor.graph.value)  # the graph marks the step
    await handler.cancel()


# -- human input ------------------------------------------------------------------------------


async def test_answering_sends_a_human_response_and_disables_the_box() -> None:
    handler = Fan().run(run_id="ask", n=2)
    monitor = handler.monitor()
    await until(lambda: monitor.answer is not None)
    assert "Approve the total?" in words(monitor.question.value)
    assert "nwm-hidden" not in monitor._ask_row._dom_classes
    assert monitor.answer.continuous_update is False  # one update per answer: see widgets.py
    box = monitor.answer
    box.value = "approved"
    monitor.send.click()
    assert await handler == "approved: 10"
    assert box.disabled and box.value == ""
    assert "nwm-hidden" in monitor._ask_row._dom_classes  # no open question left


async def test_enter_sends_the_value_that_arrives_after_the_submit_message() -> None:
    handler = Fan().run(run_id="enter", n=1)
    monitor = handler.monitor()
    await until(lambda: monitor.answer is not None)
    box = monitor.answer
    # What the browser sends on Enter: the box's submit message first, then its new value.
    box._handle_custom_msg({"event": "submit"}, [])
    await asyncio.sleep(0.02)
    assert not handler.done()  # no answer yet: the value is still on its way
    box.value = "typed"
    assert await handler == "typed: 0"


async def test_each_question_gets_a_fresh_box() -> None:
    handler = TwoQuestions().run(run_id="two")
    monitor = handler.monitor()
    await until(lambda: monitor.answer is not None)
    first = monitor.answer
    assert "Name?" in words(monitor.question.value)
    first.value = "Ada"
    monitor.send.click()
    await until(lambda: monitor.answer is not first)
    assert "Colour?" in words(monitor.question.value)
    assert first.comm is None  # the spent box was closed
    monitor.answer.value = "green"
    monitor.send.click()
    assert await handler == "Ada/green"


async def test_a_restored_run_shows_its_open_question_at_once() -> None:
    workflow = Fan()
    handler = workflow.run(run_id="asked", n=2)
    await until(lambda: handler.status == "waiting")
    saved = json.loads(json.dumps(handler.ctx.to_dict()))
    await handler.cancel()
    with pytest.raises(WorkflowCancelledError):
        await handler

    again = workflow.run(ctx=Context.from_dict(workflow, saved))
    monitor = again.monitor()  # the question was re-published before the monitor came
    assert monitor.answer is not None
    assert "Approve the total?" in words(monitor.question.value)
    monitor.answer.value = "later"
    monitor.send.click()
    assert await again == "later: 10"


async def test_a_resumed_run_asks_its_open_question_again() -> None:
    workflow = TwoQuestions()
    handler = workflow.run(run_id="paused")
    await until(lambda: handler.status == "waiting")
    saved = handler.ctx.to_dict()
    await handler.cancel()
    with pytest.raises(WorkflowCancelledError):
        await handler

    restored = Context.from_dict(workflow, json.loads(json.dumps(saved)))
    again = workflow.run(ctx=restored)
    monitor = again.monitor()
    await until(lambda: monitor.answer is not None)  # the waiting step runs again and asks
    assert "Name?" in words(monitor.question.value)
    monitor.answer.value = "Grace"
    monitor.send.click()
    await until(lambda: "Colour?" in words(monitor.question.value or ""))
    monitor.answer.value = "blue"
    monitor.send.click()
    assert await again == "Grace/blue"


# -- throttling and bounds --------------------------------------------------------------------


async def test_a_2000_step_run_refreshes_a_bounded_number_of_times() -> None:
    handler = Chain().run(run_id="chain", n=2000)
    monitor = handler.monitor()
    started = time.perf_counter()
    assert await handler == 2000
    elapsed = time.perf_counter() - started
    assert monitor._refreshes <= elapsed / REFRESH_INTERVAL + 3
    assert monitor._log_total < 2 * LOG_BURST + 10  # followed a burst, then paused
    log = words(monitor.log.value)
    assert re.search(r"[\d,]+ steps ran faster than the log follows", log)
    assert log.endswith("RunStatusChanged done")
    assert "StopEvent(result=2000)" in log  # stream events are caught up after a pause
    assert "counter int 2000" in words(monitor.store.value)
    assert repr(monitor) == "RunMonitor(Chain, run 'chain', done, 2001 steps)"


async def test_the_log_keeps_its_last_entries_newest_at_the_bottom() -> None:
    handler = Chatty().run(run_id="chatty", n=60)
    monitor = RunMonitor(handler, log_size=20)
    await handler
    assert len(monitor._log) == 20
    log = words(monitor.log.value)
    assert re.search(r"events · \d+ · \d+ older ones not kept", monitor.log_fold.description)
    assert "Work(i=0)" not in log
    assert log.index("Work(i=58)") < log.index("Work(i=59)") < log.index("RunStatusChanged done")


async def test_a_long_field_can_be_read_in_full_on_demand() -> None:
    handler = Chatty().run(run_id="long", n=0)
    handler.ctx.write_event_to_stream(Done(i=1, value=7, note="x" * 300))
    monitor = handler.monitor()
    await handler
    line = re.search(r'<span class="m">(Done\(.*?)</span>', monitor.log.value)
    assert line is not None
    assert "note='xxxx" in text(line.group(1)) and "x" * 300 not in line.group(1)
    assert re.search(r"<details[^>]*><summary>.*?Done\(.*?<pre>.*x{300}", monitor.log.value, re.S)


async def test_store_rows_mark_the_keys_changed_since_the_last_refresh() -> None:
    handler = Chain().run(stepwise=True, run_id="marks", n=3)
    monitor = handler.monitor()

    def marked(key: str) -> bool:
        row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*<code>{key}</code>", monitor.store.value)
        assert row is not None, key
        return 'class="changed"' in row.group(0)

    await handler.step()  # begin: sets n
    monitor._refresh()
    assert marked("n")
    await handler.step()  # loop: sets counter
    monitor._refresh()
    assert marked("counter") and not marked("n")
    monitor._refresh()
    assert not marked("counter")  # nothing changed since the last refresh
    await handler


# -- stepping, checkpoints, the graph without Graphviz ----------------------------------------


async def test_the_step_button_runs_one_step_of_a_stepwise_run() -> None:
    handler = Chain().run(stepwise=True, run_id="steps", n=3)
    monitor = handler.monitor()
    assert monitor.step_button is not None
    assert "nwm-hidden" not in monitor.step_button._dom_classes
    monitor.step_button.click()
    await until(lambda: handler.steps_done == 1 and not monitor._stepping)
    await until(lambda: "stepped: produced Work(i=0)" in words(monitor.header.value))
    monitor.step_button.click()
    await until(lambda: handler.steps_done == 2 and not monitor._stepping)
    assert await handler == 3  # awaiting runs the rest freely
    assert "nwm-hidden" in monitor.step_button._dom_classes


async def test_a_free_run_has_no_step_button() -> None:
    handler = Chain().run(run_id="free", n=2)
    monitor = handler.monitor()
    await handler
    assert monitor.step_button is None


class _Recorder:
    """A checkpoint store stand-in: the monitor only needs to know there is one."""

    def run_started(self, driver: Any) -> None: ...
    def step_completed(self, driver: Any, inv: Any) -> None: ...
    def run_ended(self, driver: Any) -> None: ...


async def test_a_checkpointed_run_shows_the_run_id_to_resume_with() -> None:
    handler = Explode().run(run_id="durable-1", checkpoint=MemoryStore())
    monitor = handler.monitor()
    with pytest.raises(ValueError):
        await handler
    # the line to type in a new cell, naming the store a new instance would not find by itself
    assert "await Explode().resume('durable-1', store=store)" in words(monitor.header.value)
    plain = Explode().run(run_id="plain")
    other = plain.monitor()
    with pytest.raises(ValueError):
        await plain
    assert "resume" not in words(other.header.value)


async def test_without_graphviz_the_graph_shows_its_dot_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` to be found
    handler = Chain().run(run_id="no-dot", n=2)
    monitor = handler.monitor()
    await handler
    await drawn(monitor)
    shown = text(monitor.graph.value)
    assert "Install Graphviz" in shown
    assert "digraph" in shown and "Traceback" not in shown


# -- threads ----------------------------------------------------------------------------------


def test_a_run_on_the_run_sync_helper_thread_updates_the_monitor_there(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The run goes on in ``run_sync``'s helper loop; the monitor is made (and its buttons
    clicked) from this thread, and every widget update still happens on the helper's."""

    async def start() -> Any:
        return Fan().run(run_id="portal", n=3)

    helper = portal()
    handler = helper.submit(start).future.result(timeout=5)
    monitor = RunMonitor(handler)
    updated_on: set[str] = set()
    for part in (monitor.header, monitor.store, monitor.log, monitor.graph):
        part.observe(lambda _: updated_on.add(threading.current_thread().name), names="value")

    wait_until(lambda: monitor.answer is not None, what="the question in the monitor")
    monitor.answer.value = "ok"
    monitor.send.click()  # from this thread: handed to the helper's loop

    async def result() -> Any:
        return await handler

    with caplog.at_level(logging.ERROR, logger="notebook_workflows"):
        assert helper.submit(result).future.result(timeout=5) == "ok: 30"
        wait_until(monitor._graph.idle, what="the last graph drawn")
    # (the helper loop is shared: only errors about this run count)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    mine = [r for r in errors if "portal" in r.getMessage() or "monitor" in r.getMessage()]
    assert not mine, [r.getMessage() for r in mine]
    assert "done" in words(monitor.header.value), monitor.header.value
    assert updated_on == {helper.thread.name}, updated_on


# -- text and the saved picture ---------------------------------------------------------------


async def test_the_text_form_is_deterministic() -> None:
    handler = Chain().run(run_id="docs", n=6)
    monitor = handler.monitor()
    assert repr(monitor) == "RunMonitor(Chain, run 'docs', running, 0 steps)"
    await handler
    expected = "RunMonitor(Chain, run 'docs', done, 7 steps)"
    assert repr(monitor) == expected
    bundle = monitor._repr_mimebundle_()
    assert bundle["text/plain"] == expected
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == monitor.widget.model_id


async def test_the_static_picture_has_status_store_and_log() -> None:
    handler = Explode().run(run_id="static")
    monitor = handler.monitor()
    with pytest.raises(ValueError):
        await handler
    await drawn(monitor)  # the picture shows the graph as the monitor last drew it
    html = monitor._repr_mimebundle_()["text/html"]
    shown = words(html)
    assert "Explode · run static · failed" in shown
    assert "step explode failed: ValueError: boom at 1" in shown
    assert "started bool True" in shown  # the store
    assert "events" in shown and "StepFailed" in shown  # the log
    assert "<script" not in html and "<style" not in html  # what sanitizers would drop
    # every cell aligned left explicitly: JupyterLab's output area right-aligns them otherwise
    cells = re.findall(r"<t[dh][ >]", html)
    assert cells and len(cells) == len(re.findall(r'<t[dh] style="text-align:left', html))
    if HAS_DOT:  # the graph, as an image a notebook opened untrusted (or GitHub) still shows
        assert '<img src="data:image/svg+xml;base64,' in html


def test_importing_the_package_does_not_import_ipywidgets() -> None:
    import subprocess
    import sys

    code = "import sys, notebook_workflows; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    code = "import sys, notebook_workflows.widgets; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_monitor_module_keeps_its_promises_in_its_docstring() -> None:
    package = Path(__file__).resolve().parents[1] / "notebook_workflows" / "notebook"
    source = package / "monitor" / "monitor.py"
    doc = source.read_text(encoding="utf-8").split('"""')[1]
    for decision in ("thread", "throttled", "display id", "with output:"):
        assert decision in doc


# -- in a real kernel: what steps print, and the notebook saved after execution ---------------

NOTEBOOK_CELLS = [
    """
import asyncio
from IPython.display import display, Markdown
from notebook_workflows import *

class Part(Event):
    n: int

class Written(Event):
    n: int

class Report(Workflow):
    @step
    async def split(self, ctx: Context, ev: StartEvent) -> Part | None:
        await ctx.store.set("parts", 2)
        for n in range(2):
            ctx.send_event(Part(n=n))

    @step(num_workers=2)
    def write(self, ev: Part) -> Written:
        print(f"writing part {ev.n}")  # a sync step, on a worker thread
        return Written(n=ev.n)

    @step
    async def join(self, ctx: Context, ev: Written) -> StopEvent | None:
        if ctx.collect_events(ev, [Written, Written]) is None:
            return None
        print("joined both parts")
        display(Markdown("**report ready**"))
        return StopEvent(result="report done")
""",
    """
print("the cell's own line")
handler = Report().run(run_id="docs")
display(handler.monitor())
await handler
""",
]


@pytest.mark.kernel
def test_an_executed_notebook_keeps_the_finished_view(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    nbformat.write(nb, tmp_path / "executed.ipynb")
    saved = nbformat.read(tmp_path / "executed.ipynb", as_version=4)

    outputs = saved.cells[1].outputs
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "the cell's own line" in streams
    assert "writing part" not in streams and "joined" not in streams  # in the monitor instead
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1
    data = shown[0].data
    assert data["text/plain"] == "RunMonitor(Report, run 'docs', done, 5 steps)"
    page = words(data["text/html"])
    assert "Report · run docs · done" in page
    assert "parts int 2" in page  # the final store
    assert "StopEvent(result='report done')" in page  # the log
    assert "writing part 0" in page and "joined both parts" in page  # the output of steps
    if HAS_DOT:  # the finished run's graph, drawn off the loop, published as the cell ended
        assert '<img src="data:image/svg+xml;base64,' in data["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in data
    result = [o for o in outputs if o.output_type == "execute_result"]
    assert result and "'report done'" in result[0].data["text/plain"]

    # The widget state saved with the notebook: the monitor's output area holds the steps'
    # prints and display, captured in the kernel and set from the run's loop.
    state = saved.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    areas = [m["state"] for m in state.values() if m["model_name"] == "OutputModel"]
    assert len(areas) == 1
    captured = areas[0]["outputs"]
    printed = "".join(o.get("text", "") for o in captured if o["output_type"] == "stream")
    assert "writing part 0" in printed and "writing part 1" in printed
    assert "joined both parts" in printed
    assert any(
        "report ready" in json.dumps(o) for o in captured if o["output_type"] == "display_data"
    )


@pytest.mark.kernel
def test_a_run_that_ends_between_cells_updates_its_display_in_the_next_cell(
    tmp_path: Path,
) -> None:
    """nbclient keeps only messages sent under the cell it runs: a run that ended while no cell
    ran (shown in one cell, never awaited) updates its display again when the next cell runs."""
    from kernel_helpers import Kernel

    kernel = Kernel(tmp_path)
    try:
        kernel.check(NOTEBOOK_CELLS[0])
        ended = tmp_path / "ended"
        shown = kernel.check(
            'handler = Report().run(run_id="idle")\n'
            f"handler.add_done_callback(lambda _: open({str(ended)!r}, 'w').close())\n"
            "handler.monitor()"
        )
        assert "RunMonitor(Report, run 'idle', running, 0 steps)" in shown.text
        wait_until(ended.exists, what="the run's end")  # while the kernel is idle: no cell runs
        msg_id = kernel.submit("handler.done()")
        updates = []
        while True:
            msg = kernel.client.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "update_display_data":
                updates.append(msg["content"]["data"])
            if msg["msg_type"] == "execute_result":
                assert msg["content"]["data"]["text/plain"] == "True"
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert [u["text/plain"] for u in updates] == [
            "RunMonitor(Report, run 'idle', done, 5 steps)"
        ]
        assert "StopEvent(result='report done')" in words(updates[0]["text/html"])
    finally:
        kernel.shutdown()
