"""RunMonitor: one live view of a run, built from standard ipywidgets.

``handler.monitor()`` shows the run's status and progress, its graph with the running step
marked, the store, a timeline of step invocations, an event log, what its steps printed, an
input box for a question to a human, and Cancel/Step buttons, all updating in place while the
run goes on. It reads the run only through the handler's public contract: ``view()``,
``subscribe``, ``add_done_callback``, ``add_step_context``, ``request_cancel``, ``step()``,
``ctx.send_event`` and, to edit and fork (``fork_section``), ``checkpoint_store``. Design decisions:

- **One thread touches the widgets: the run's.** Widgets are made and updated on the run's event
  loop thread (``handler.loop``): the kernel's own when a cell awaits the run, ``run_sync``'s
  helper thread when a plain cell blocks in it (comm messages still reach the browser from there
  while the kernel's loop is blocked). Clicks and typed answers arrive on the kernel's shell
  thread and are handed to the run's loop with ``call_soon_threadsafe``. Only once that loop has
  stopped for good may another thread (the graph renderer) set a widget, because then nothing
  else can.
- **State is read, the log is followed.** The header, graph, store and input box are read from
  one ``handler.view()`` per refresh, so they are exact whatever happened in between. The event
  log and the timeline follow the run with ``handler.subscribe``; the listener appends and marks
  the monitor dirty, nothing more, and pauses after a burst (see ``log``). Events written to the
  stream are never lost to a pause: the view keeps them and the monitor catches up.
- **Refreshes are throttled and grouped.** A timer on the run's loop redraws what changed, at
  most about ten times a second however many events arrive; a refresh sets only traits whose
  value changed, each widget inside ``hold_sync()``, so it sends at most one message per widget.
  Widgets are made with their first state, and share one ``Layout`` and style model per kind
  with every other monitor (the look is a stylesheet, ``style``; parts hide and fold by CSS
  class), because making a widget model costs far more than updating one. When the run ends the
  last picture is drawn at once, before ``await handler`` returns: the final state is shown.
- **The graph is drawn off the loop** (``graph_panel``).
- **What steps print is captured in the kernel, not routed by the browser** (``kernel_io``, the
  one module that touches ipykernel's private attributes; ``with output:`` from a thread is
  never used, it would also capture what the kernel's main thread prints meanwhile).
- **The notebook keeps the finished view.** The monitor is displayed with a display id; when the
  run ends, that display is updated with the widget view plus a deterministic ``text/plain``
  line (``RunMonitor(Pipeline, run 'docs', done, 7 steps)``) and a static ``text/html`` picture
  (``static``), so an executed notebook reads well on GitHub and in nbval.
- **An answer gets through while the cell awaits.** ipywidgets lets one state update per widget
  through until the kernel acknowledges it with an idle status, which ipykernel does not send
  for messages handled while a cell awaits. So the answer box has ``continuous_update=False``
  (one update, on Enter or when it loses focus) and each question gets a fresh box. Enter sends
  the box's ``submit`` message before its new value, so the answer is sent when the value
  arrives, not with the value the kernel had.

ipywidgets is imported when a monitor is made, not when this module is imported.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...events import (
    Event,
    RunStatusChanged,
    StepFailed,
    StepFinished,
    StepStarted,
)
from ...runtime.view import current_step
from ..display import event_summary
from ..graph import WorkflowGraph
from ..timeline import Timeline, spans_from_snapshots, timeline_html
from .answers import QuestionBox
from .fork_section import ForkSection
from .graph_panel import GraphPanel
from .kernel_io import OutputBuffer, capture_available
from .log import LOG_BURST, EventLog, Gap, Published, _error_text, read_history, recorded_entries
from .panels import StoreTable, header_html
from .static import SavedPicture
from .style import FOLDED
from .widget_util import _set, _shared_models, _show

if TYPE_CHECKING:
    import ipywidgets

    from ...handler import WorkflowHandler
    from ...runtime.view import RunView

logger = logging.getLogger("notebook_workflows")

REFRESH_INTERVAL = 0.1  # seconds between refreshes at the least: about ten a second at most
HEARTBEAT = 1.0  # the elapsed time moves on even when nothing else happens
LOG_SIZE = 200  # log entries kept
_ENDED = ("done", "failed", "cancelled")


class RunMonitor(QuestionBox, SavedPicture, ForkSection):
    """A live view of one run; display it in a notebook (``handler.monitor()``).

    Its parts are ipywidgets, reachable for tests and custom layouts: ``widget`` (the whole
    view), ``header`` (status, progress, result or error), ``graph``, ``store``, ``log`` and
    ``log_fold`` (its title, which folds it), ``cancel_button``; ``step_button`` for a stepwise
    run; and, once first needed, ``question``, ``answer`` and ``send`` (the input row for a
    question to a human), ``timeline`` and ``output`` (what the steps printed or displayed),
    each with its fold title; ``fork_fold`` and ``fork_form`` (edit and fork a checkpointed
    run that paused or ended). Those are ``None`` until then.
    """

    def __init__(self, handler: WorkflowHandler, *, log_size: int = LOG_SIZE) -> None:
        import ipywidgets as W

        self.handler = handler
        self._loop = handler.loop
        first = handler.view()
        self._started = first.started_at
        # following the run
        self._events = EventLog(log_size)
        self._timeline = Timeline()
        self._timeline_drawn = -1
        self._unsubscribe: Callable[[], None] | None = None
        self._budget = LOG_BURST
        self._paused = False  # following no records until the run slows down
        self._gap: Gap | None = None  # the log's pause, while it lasts
        self._gap_from = 0  # steps done when it paused
        self._pace = (0.0, 0)  # (loop time, steps done) at the last refresh
        self._stream_seen: Event | None = None  # the newest stream event logged
        self._recorded = False  # the timeline was read from the run's checkpoints
        self._logged_status = first.status
        self._status_detail = ""
        self._traceback: str | None = None  # of the error the run failed with
        # refreshing
        self._scheduled = False
        self._timer: Any = None
        self._heartbeat: Any = None
        self._last_refresh = float("-inf")
        self._refreshes = 0
        self._final = False
        # what was drawn
        self._store = StoreTable()
        self._outputs_changed = False
        self._graph = GraphPanel(self._post, self._call_later, self._graph_drawn, REFRESH_INTERVAL)
        # actions
        self._shown_question: Event | None = None
        self._answered: list[Event] = []
        self._enter_pending = False
        self._stepping = False
        self._note = ""
        self._display_id = uuid.uuid4().hex
        self._displayed = False
        self._remove_step_context: Callable[[], None] | None = None

        self._built = False
        self._W = W
        self.question: ipywidgets.HTML | None = None
        self.answer: ipywidgets.Text | None = None
        self.send: ipywidgets.Button | None = None
        self._ask_row: ipywidgets.HBox | None = None
        self.output: ipywidgets.Output | None = None
        self.output_fold: ipywidgets.Button | None = None
        self.timeline: ipywidgets.HTML | None = None
        self.timeline_fold: ipywidgets.Button | None = None
        self.step_button: ipywidgets.Button | None = None

        self._capture = OutputBuffer(self._output_arrived) if capture_available() else None
        self._on_loop(self._attach)

    # the log's entries, and how many there ever were (tests and custom views read these)
    @property
    def _log(self) -> Any:
        return self._events.entries

    @property
    def _log_total(self) -> int:
        return self._events.total

    # whether a graph is being drawn or waits to be (bench/bench_monitor.py waits on these)
    @property
    def _graph_busy(self) -> bool:
        return self._graph.busy

    @property
    def _graph_next(self) -> WorkflowGraph | None:
        return self._graph.next

    def _build(self, view: RunView) -> None:
        """Make the widgets, with the run as it is now: their first state travels with their
        creation, not in a second message."""
        W = self._W
        shared = _shared_models(W)
        self._layout = shared["layout"]
        self._html_style = shared["html"]
        self._button_style = shared["button"]
        self._text_style = shared["text"]
        parts = [shared["stylesheet"]]
        self.header = self._html(self._header_html(view), "nwm-header")
        self.cancel_button = self._button(
            "Cancel", "stop", "cancel the run", "nwm-cancel", disabled=view.finished
        )
        self.cancel_button.on_click(lambda _: self._post(self._cancel))
        if view.stepwise:
            self.step_button = self._button("Step", "step-forward", "run one step", "nwm-step")
            self.step_button.on_click(lambda _: self._post(self._step))
            parts.append(self.step_button)
        self.graph = self._html('<div class="nwm-dim">drawing the graph…</div>', "nwm-graph")
        self.store = self._html(self._store.update(view.store) or "", "nwm-store")
        self.log = self._html(self._events.update(self._started) or "", "nwm-logbox")
        self.log_fold = self._fold(self.log, self._events.title(), "nwm-fold-log")
        parts += [self.header, self.cancel_button, self.graph, self.store, self.log_fold, self.log]
        self.widget = W.VBox(parts, layout=self._layout, _dom_classes=("nwm",))
        self._built = True
        self._render_question(view)
        self._graph.request(WorkflowGraph.of_run(self.handler, view=view))

    def _html(self, value: str, name: str) -> ipywidgets.HTML:
        return self._W.HTML(
            value, layout=self._layout, style=self._html_style, _dom_classes=(name,)
        )

    def _button(self, text: str, icon: str, tooltip: str, name: str, **more: Any) -> Any:
        return self._W.Button(
            description=text,
            icon=icon,
            tooltip=tooltip,
            layout=self._layout,
            style=self._button_style,
            _dom_classes=(name,),
            **more,
        )

    def _fold(self, part: Any, title: str, name: str) -> Any:
        """A section's title, as a button that folds the section away and back."""
        button = self._button(f"▾ {title}", "", "fold or unfold", name)
        button.add_class("nwm-fold")

        def toggle() -> None:
            folded = FOLDED in part._dom_classes
            (part.remove_class if folded else part.add_class)(FOLDED)
            button.description = ("▾ " if folded else "▸ ") + button.description[2:]

        button.on_click(lambda _: self._post(toggle))
        return button

    @staticmethod
    def _retitle(button: Any, title: str) -> None:
        _set(button, description=button.description[:2] + title)

    # -- threads ------------------------------------------------------------------------------

    def _loop_alive(self) -> bool:
        loop = self._loop
        return loop.is_running() and not loop.is_closed()

    def _in_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _call_later(self, delay: float, fn: Callable[[], None]) -> Any:
        return self._loop.call_later(delay, fn) if self._loop_alive() else None

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the run's loop thread, waiting for it; directly once that loop stopped."""
        if self._in_loop_thread() or not self._loop_alive():
            return fn()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the calling thread
                future.set_exception(exc)

        try:
            self._loop.call_soon_threadsafe(call)
        except RuntimeError:  # the loop closed in between: nobody else touches the widgets
            return fn()
        return future.result()

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the run's loop thread soon (from any thread)."""
        if self._in_loop_thread():
            fn(*args)
            return
        if self._loop_alive():
            try:
                self._loop.call_soon_threadsafe(fn, *args)
                return
            except RuntimeError:  # the loop closed in between: nobody else touches the widgets
                pass
        fn(*args)

    # -- following the run (on the loop thread) -----------------------------------------------

    def _attach(self) -> None:
        view = self.handler.view()
        if view.finished:  # nothing to follow: show what the run recorded
            self._catch_up_recorded(view)
        self._catch_up_stream(view, at=None)  # what the run wrote before the monitor came
        if self._capture is not None and not view.finished:
            self._capture.hook_display()
            self._remove_step_context = self.handler.add_step_context(self._capture.step_setup())
        self._build(view)
        self._last_refresh = self._loop.time() if self._loop_alive() else float("-inf")
        if view.finished:
            self._finish()
            return
        # The run's end draws the last picture even while the log pauses; registered before
        # ``await handler`` usually is, so it runs before the awaiting code resumes.
        self.handler.add_done_callback(lambda _: self._finish())
        self._pace = (self._loop.time(), view.steps_done)
        self._follow()
        self._heartbeat = self._loop.call_later(HEARTBEAT, self._beat)

    def _follow(self) -> None:
        self._budget = LOG_BURST
        self._paused = False
        if self._unsubscribe is None:
            self._unsubscribe = self.handler.subscribe(self._on_item)

    def _pause(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._paused = True
        self._gap_from = self.handler.view().steps_done

    def _on_item(self, item: Any) -> None:
        """The run's listener: called for every step start and finish, so keep this short."""
        cls = item.__class__
        if cls is StepStarted or cls is StepFinished:
            self._events.add(item)
            self._timeline.add_record(item, type(item.event).__name__)
            self._budget -= 1
            if self._budget <= 0:
                self._pause()
            if not self._scheduled:
                self._schedule()
            return
        if cls is RunStatusChanged:
            self._status_detail = item.detail
            self._logged_status = item.status
            self._events.add(item)
            if item.status in _ENDED and self.handler.done():
                # The run's last record: draw the last picture now, before code that already
                # holds the finished handler (``await`` returns at once then) reads it.
                self._finish()
                return
        elif cls is StepFailed:
            self._events.add(item)
            self._timeline.add_record(item, type(item.event).__name__)
        elif isinstance(item, Event):
            self._events.add(Published(item, current_step() or "", time.time()))
            self._stream_seen = item
        else:  # anything else the run reports (its end is seen by the done callback)
            return
        if not self._scheduled:
            self._schedule()

    def _catch_up_stream(self, view: RunView, at: float | None) -> None:
        """Log the stream events the listener did not see (before it came, or in a pause)."""
        missed: list[Event] = []
        for event in reversed(view.log):
            if event is self._stream_seen:
                break
            missed.append(event)
            if len(missed) >= self._events.entries.maxlen:
                break
        for event in reversed(missed):
            self._events.add(Published(event, "", at))
        if missed:
            self._stream_seen = missed[0]

    def _catch_up_recorded(self, view: RunView) -> None:
        """A monitor made after its run ended: the timeline and a log line per snapshot from
        the run's checkpoints, or a line that says why there are none."""
        history = read_history(self.handler.checkpoint_store, view.run_id)
        for entry in recorded_entries(history, view.ended_at or time.time()):
            self._events.add(entry)
        if history:
            self._timeline.add_spans(spans_from_snapshots(history))
            self._recorded = True

    def _paused_log(self, view: RunView, now: float) -> None:
        """While the log pauses: count the steps it missed, catch up on stream events and
        status changes, and follow again once the run has slowed down."""
        if self._gap is None:
            self._gap = Gap(time.time())
            self._events.add(self._gap)
        steps = max(0, view.steps_done - self._gap_from)
        if steps != self._gap.steps:
            self._gap.steps = steps
            self._events.changed()  # the gap's line changed: redraw the log
        self._catch_up_stream(view, at=time.time())
        if view.status != self._logged_status:
            self._logged_status = view.status
            self._events.add(RunStatusChanged(view.run_id, view.status, "", time.time()))
        since, done = self._pace
        records_per_second = 2 * (view.steps_done - done) / max(now - since, 1e-3)
        if records_per_second < LOG_BURST / REFRESH_INTERVAL / 2 and not view.finished:
            self._gap = None
            self._follow()

    def _schedule(self) -> None:
        if not self._loop_alive():  # the run's loop has stopped for good: draw now
            self._refresh()
            return
        self._scheduled = True
        wait = self._last_refresh + REFRESH_INTERVAL - self._loop.time()
        self._timer = (
            self._loop.call_later(wait, self._refresh)
            if wait > 0
            else self._loop.call_soon(self._refresh)
        )

    def _beat(self) -> None:
        self._heartbeat = None
        if self._final:
            return
        if not self._scheduled:
            self._schedule()
        self._heartbeat = self._loop.call_later(HEARTBEAT, self._beat)

    def _output_arrived(self) -> None:
        """From any thread: outputs wait in the capture buffer."""
        if self._in_loop_thread():
            if not self._scheduled:
                self._schedule()
        elif self._loop_alive():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._output_arrived)

    def _refresh(self) -> None:
        if not self._built:  # output arrived before the widgets were made: they will show it
            self._scheduled = False
            return
        if self._timer is not None:
            self._timer.cancel()  # when called directly (the run ended): no second refresh
            self._timer = None
        self._scheduled = False
        self._last_refresh = self._loop.time()
        try:
            self._render()
        except Exception:  # a display problem must never disturb the run
            logger.exception("notebook_workflows: the run monitor could not refresh")

    def _finish(self) -> None:
        """The run ended: draw the last picture now, and leave it in the notebook."""
        if self._final:
            return
        self._final = True
        self._graph.final = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self._remove_step_context is not None:
            self._remove_step_context()
            self._remove_step_context = None
        if self._capture is not None:
            self._capture.flush()  # what steps printed reaches the capture hook first
        if self._displayed:
            # The static picture first: publishing waits for the kernel to send what went
            # before it, which then does not include the widget updates that follow.
            self._absorb(self.handler.view(), self._loop.time())
            self._publish_final()
        self._refresh()

    # -- drawing (on the loop thread) ---------------------------------------------------------

    def _render(self) -> None:
        self._refreshes += 1
        view = self.handler.view()
        now = self._loop.time()
        self._absorb(view, now)
        self._pace = (now, view.steps_done)
        _set(self.header, value=self._header_html(view))
        self._render_buttons(view)
        self._render_question(view)
        store = self._store.update(view.store)
        if store is not None:
            _set(self.store, value=store)
        log = self._events.update(self._started)
        if log is not None:
            _set(self.log, value=log)
            self._retitle(self.log_fold, self._events.title())
        self._render_timeline(view)
        self._render_output()
        self._render_fork(view)
        self._graph.request(WorkflowGraph.of_run(self.handler, view=view))

    def _absorb(self, view: RunView, now: float) -> None:
        """Bring the log, the timeline and the captured output up to date (no widget is
        touched)."""
        if self._paused:
            self._paused_log(view, now)
        if view.finished and view.ended_at:
            self._timeline.close(view.ended_at)
        if self._capture is not None and self._capture.take():
            self._outputs_changed = True

    def _header_html(self, view: RunView) -> str:
        if view.failed and view.error is not None and self._traceback is None:
            # formatted once, as the run ended: code that awaits the run and re-raises the
            # error later adds its own frames to the same traceback
            self._traceback = _error_text(view.error)
        detail, note = self._status_detail, self._note
        return header_html(
            view, traceback=self._traceback, cancelled=detail, note=note, handler=self.handler
        )

    def _render_buttons(self, view: RunView) -> None:
        _set(self.cancel_button, disabled=view.finished)
        if self.step_button is not None:
            _show(self.step_button, view.stepwise)
            _set(self.step_button, disabled=self._stepping or not view.stepwise)

    def _render_timeline(self, view: RunView) -> None:
        timeline = self._timeline
        timeline.mark_waiting(view.waiting)
        running = any(s.end is None for s in timeline.spans[-50:])
        if not timeline.spans or (timeline.version == self._timeline_drawn and not running):
            return
        if self.timeline is None and self._final and self._refreshes <= 1 and not self._recorded:
            # The run ended before the first refresh: a strip of a few milliseconds says
            # nothing, and two more widgets would cost a short run a fifth of its time.
            return
        self._timeline_drawn = timeline.version
        missed = max(0, view.steps_done - timeline.finished)
        now = view.ended_at or time.time()
        strip = timeline_html(
            timeline.spans, now, dropped=timeline.dropped, missed=missed, started=self._started
        )
        title = f"timeline · {len(timeline.spans) + timeline.dropped:,} invocations"
        if self.timeline is None:
            self.timeline = self._html(strip, "nwm-timeline")
            self.timeline_fold = self._fold(self.timeline, title, "nwm-fold-timeline")
            self.widget.children = (*self.widget.children, self.timeline_fold, self.timeline)
            return
        _set(self.timeline, value=strip)
        self._retitle(self.timeline_fold, title)

    def _render_output(self) -> None:
        if not self._outputs_changed:
            return
        self._outputs_changed = False
        if self.output is None:
            self.output = self._W.Output(layout=self._layout, _dom_classes=("nwm-output",))
            self.output_fold = self._fold(self.output, "output of steps", "nwm-fold-output")
            self.widget.children = (*self.widget.children, self.output_fold, self.output)
        _set(self.output, outputs=tuple(self._outputs))

    @property
    def _outputs(self) -> list[dict[str, Any]]:
        return self._capture.outputs if self._capture is not None else []

    def _graph_drawn(self, drawn: str) -> None:
        _set(self.graph, value=f'<div class="nwm-title">graph</div>{drawn}')

    # -- actions (on the loop thread; widget callbacks hand them over with ``_post``) ---------

    def _cancel(self) -> None:
        if not self.handler.done():
            self._status_detail = "cancelled from the run monitor"  # shown even if the log paused
            self.handler.request_cancel(self._status_detail)

    def _step(self) -> None:
        if self._stepping or self.handler.done() or not self.handler.view().stepwise:
            return
        self._stepping = True
        if self.step_button is not None:
            _set(self.step_button, disabled=True)
        self._loop.create_task(self._step_once())

    async def _step_once(self) -> None:
        try:
            produced = await self.handler.step()
        except Exception as exc:
            self._note = f"step: {exc}"
        else:
            if produced is None:
                self._note = "step: the run has finished"
            else:
                made = ", ".join(event_summary(e, 50) for e in produced) or "nothing"
                self._note = f"stepped: produced {made}"
        finally:
            self._stepping = False
            if not self._scheduled:
                self._schedule()
