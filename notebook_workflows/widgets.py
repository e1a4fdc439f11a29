"""RunMonitor: one live view of a run, built from standard ipywidgets.

``handler.monitor()`` shows the run's status and progress, its graph with the running step
marked, the store, an event log, what its steps printed, an input box for a question to a
human, and Cancel/Step buttons, all updating in place while the run goes on. Design decisions:

- **One thread touches the widgets: the run's.** Widgets are made and updated on the run's event
  loop thread: the kernel's own when a cell awaits the run, ``run_sync``'s helper thread when a
  plain cell blocks in it (comm messages still reach the browser from there while the kernel's
  loop is blocked). Clicks and typed answers arrive on the kernel's shell thread and are handed
  to the run's loop with ``call_soon_threadsafe``. Only once that loop has stopped for good may
  another thread (the graph renderer) set a widget, because then nothing else can.
- **State is read, the log is followed.** The header, graph, store and input box are read from
  the run (``handler.stats()``, the store, the open questions) at each refresh, so they are
  exact whatever happened in between. The event log follows the run with ``handler.subscribe``;
  the listener appends to a bounded deque and marks the monitor dirty, nothing more. Following
  makes the run build a record for every step start and finish (a third more time on a
  2,000-step chain of trivial steps, even for an empty listener), so the log follows at most
  ``LOG_BURST`` records per refresh interval, then pauses until the run slows down and says how
  many steps ran meanwhile. Events written to the stream are never lost to a pause: the run
  keeps them and the monitor catches up at the next refresh.
- **Refreshes are throttled and grouped.** A timer on the run's loop redraws what changed, at
  most about ten times a second however many events arrive; a refresh sets only traits whose
  value changed, each widget inside ``hold_sync()``, so it sends at most one message per widget.
  Widgets are made with their first state, and share one ``Layout`` and style model per kind
  with every other monitor (the look is a stylesheet; parts hide by CSS class), because making
  a widget model costs far more than updating one. When the run ends the last picture is drawn
  at once, before ``await handler`` returns: the final state is always what is shown.
- **The graph is drawn off the loop.** Graphviz takes tens of milliseconds, longer than many
  whole runs. The DOT text is built on the loop and drawn on one renderer thread, the newest
  text only, at most every ``GRAPH_INTERVAL`` and not before the first refresh interval has
  passed (a short run is drawn once, when it has ended); the SVG comes back to the loop.
- **What steps print is captured in the kernel, not routed by the browser.** Each step runs
  with ipykernel's stdout/stderr parent header pointing at a header of the monitor's own
  (``handler.add_step_context``). A hook on ipykernel's I/O thread takes the stream messages
  under that header, a display hook on the run's thread takes the ``display()`` calls made
  there, and both are appended to the monitor's ``Output`` widget from the run's loop. Giving
  the ``Output`` widget that header's ``msg_id`` and letting the frontend route the messages
  does not work: JupyterLab 4.6 (checked in a browser) routes by ``msg_id`` only for requests
  it sent itself and still waits on, and drops the rest. ``with output:`` from a thread is never
  used: it would also capture what the kernel's main thread prints meanwhile. A ``display()``
  in a synchronous step (on a worker thread) still goes to the cell that started the run.
- **The notebook keeps the finished view.** The monitor is displayed with a display id; when the
  run ends, that display is updated with the widget view plus a deterministic ``text/plain``
  line (``RunMonitor(Pipeline, run 'docs', done, 7 steps)``) and a static ``text/html`` picture
  (status, store, log, output), so an executed notebook reads well on GitHub and in nbval,
  where no widget runs.
- **An answer gets through while the cell awaits.** ipywidgets lets one state update per widget
  through until the kernel acknowledges it with an idle status, which ipykernel does not send
  for messages handled while a cell awaits. So the answer box has ``continuous_update=False``
  (one update, on Enter or when it loses focus) and each question gets a fresh box. Enter sends
  the box's ``submit`` message before its new value, so the answer is sent when the value
  arrives, not with the value the kernel had.

ipywidgets is imported when a monitor is made, not when this module is imported.
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import logging
import re
import reprlib
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._display import (
    STATUS_COLOURS,
    _table,
    duration,
    event_summary,
    handler_html,
    plural,
    short,
    short_text,
    store_rows,
)
from ._driver import _END, current_invocation
from ._loop import in_notebook_kernel
from .events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    RunStatusChanged,
    StepFailed,
    StepFinished,
    StepStarted,
    StopEvent,
)
from .graph import WorkflowGraph, _svg_element
from .serialization import decode

if TYPE_CHECKING:
    import ipywidgets

    from .handler import RunStats, WorkflowHandler

__all__ = ["RunMonitor"]

logger = logging.getLogger("notebook_workflows")

REFRESH_INTERVAL = 0.1  # seconds between refreshes at the least: about ten a second at most
HEARTBEAT = 1.0  # the elapsed time moves on even when nothing else happens
LOG_SIZE = 200  # log entries kept
LOG_BURST = 50  # step records the log follows per refresh interval before it pauses
STATIC_LOG_ROWS = 50  # log entries in the static picture saved with the notebook
STORE_ROWS = 60  # store keys shown
OUTPUT_ITEMS = 300  # outputs of steps kept (consecutive prints make one)
STREAM_CHARS = 50_000  # characters kept of one printed stream
ENTER_GRACE = 0.3  # seconds to wait for the box's value after Enter before using the last one
GRAPH_HEIGHT = 540  # pixels: a taller graph is scaled down to fit (to 60% at most)
GRAPH_INTERVAL = 0.5  # seconds between graph drawings at the least (Graphviz takes ~25 ms)
_HIDDEN = "nwm-hidden"

_full = reprlib.Repr()  # "the full event": generous, still bounded in time and size
_full.maxstring = 1200
_full.maxother = 1200
_full.maxlist = _full.maxtuple = _full.maxset = _full.maxfrozenset = _full.maxdict = 40
_full.maxlevel = 5
_DETAIL_CHARS = 4000


# -- what the log holds ---------------------------------------------------------------------


class _Published:
    """An event written to the run's stream (or an answer sent from the monitor), with the
    step that wrote it and when: lifecycle records carry these themselves."""

    __slots__ = ("at", "event", "step")

    def __init__(self, event: Event, step: str, at: float | None) -> None:
        self.event = event
        self.step = step
        self.at = at


class _Gap:
    """Steps that ran while the log paused (it follows ``LOG_BURST`` records per interval)."""

    __slots__ = ("at", "steps")

    def __init__(self, at: float) -> None:
        self.at = at
        self.steps = 0


# Per event: (summary, detail), shared by the rows of one refresh (a step's output is the next
# step's input, so most events appear in two rows).
_Memo = dict[int, tuple[Event, str, str]]


def _event_texts(event: Event, memo: _Memo) -> tuple[str, str]:
    """The event's one-line summary, and its fields in full when the summary had to shorten
    something ("" when the summary already says it all)."""
    hit = memo.get(id(event))
    if hit is not None and hit[0] is event:
        return hit[1], hit[2]
    summary = event_summary(event, 90)
    fields = event.fields()
    if summary.endswith("…") or not all(_is_short(v) for v in fields.values()):
        lines = [type(event).__name__]
        lines.extend(f"  {k} = {_value_text(v)}" for k, v in fields.items())
        detail = short_text("\n".join(lines), _DETAIL_CHARS)
    else:
        detail = ""
    memo[id(event)] = (event, summary, detail)
    return summary, detail


class _Row:
    """One log line, formatted once: time, step, kind, summary, a css class, the detail."""

    __slots__ = ("cls", "detail", "html", "kind", "step", "summary", "time")

    def __init__(self, item: Any, started: float, memo: _Memo) -> None:
        at = item.at
        self.time = _clock(at - started) if at else ""
        self.step = getattr(item, "step", "")
        self.cls = ""
        cls = item.__class__
        if cls is StepStarted:
            self.kind = "StepStarted"
            self.summary, self.detail = _event_texts(item.event, memo)
            if item.attempt > 1:
                self.summary += f" (attempt {item.attempt})"
        elif cls is StepFinished:  # one line per invocation: what went in, what came out
            self.kind = "StepFinished"
            given, given_detail = _event_texts(item.event, memo)
            made = [_event_texts(e, memo) for e in item.produced]
            shown = ", ".join(s for s, _ in made) or "nothing"
            self.summary = f"{given} → {shown} · {duration(item.duration)}"
            if given_detail or any(d for _, d in made) or len(self.summary) > 160:
                self.detail = f"input: {given_detail or given}" + "".join(
                    f"\nproduced: {d or s}" for s, d in made
                )
                self.summary = short_text(self.summary, 160)
            else:
                self.detail = ""
        elif cls is StepFailed:
            self.kind = "StepFailed"
            self.cls = "retry" if item.will_retry else "failed"
            given, given_detail = _event_texts(item.event, memo)
            again = " · will retry" if item.will_retry else ""
            error = f"{type(item.error).__name__}: {item.error}"
            self.summary = short_text(f"{given} ✖ {error}{again}", 160)
            self.detail = f"input: {given_detail or given}\n\n{_error_text(item.error)}"
        elif cls is RunStatusChanged:
            self.kind = "RunStatusChanged"
            self.cls = "status"
            text = item.status + (f" · {item.detail}" if item.detail else "")
            self.summary = short_text(text, 160)
            self.detail = item.detail if len(text) > 160 else ""
        elif cls is _Gap:
            n = item.steps
            self.kind = "…"
            self.cls = "gap"
            self.summary = (
                f"{n:,} {plural(n, 'step')} ran faster than the log follows "
                f"({LOG_BURST} records a refresh); their records were not kept"
            )
            self.detail = ""
        else:  # _Published
            event = item.event
            self.kind = type(event).__name__
            self.cls = (
                "question"
                if isinstance(event, InputRequiredEvent)
                else "answer"
                if isinstance(event, HumanResponseEvent)
                else "stop"
                if isinstance(event, StopEvent)
                else "event"
            )
            self.summary, self.detail = _event_texts(event, memo)
        e = html.escape
        step = e(self.step)
        head = (
            f'<span class="t">{self.time}</span><span class="s" title="{step}">{step}</span>'
            f'<span class="k">{e(self.kind)}</span><span class="m">{e(self.summary)}</span>'
        )
        self.html = (
            f'<details class="{self.cls}"><summary>{head}</summary>'
            f"<pre>{e(self.detail)}</pre></details>"
            if self.detail
            else f'<div class="{self.cls}">{head}</div>'
        )


_PLAIN = (int, float, bool, type(None))


def _is_short(value: Any) -> bool:
    kind = type(value)
    return kind in _PLAIN or (kind is str and len(value) <= 36)


def _value_text(value: Any) -> str:
    """A field's value in full, bounded: plain values as they are, the rest by ``reprlib``."""
    kind = type(value)
    if kind in _PLAIN or (kind is str and len(value) <= 200):
        return repr(value)
    return _full.repr(value)


def _clock(seconds: float) -> str:
    """Time since the run started: ``+0.042s``, ``+12m05.3s``."""
    if seconds < 60:
        return f"+{max(seconds, 0.0):.3f}s"
    minutes, rest = divmod(seconds, 60)
    return f"+{int(minutes)}m{rest:04.1f}s"


def _error_text(error: BaseException) -> str:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return text if len(text) <= _DETAIL_CHARS else "…" + text[-_DETAIL_CHARS:]


# -- capturing what steps print and display ---------------------------------------------------

# Output written in a monitored step carries a parent header of the monitor's own; the hooks
# find the monitor by that header's msg_id.
_STREAM_SINKS: weakref.WeakValueDictionary[str, _OutputBuffer] = weakref.WeakValueDictionary()
_hooked_streams: set[int] = set()
_lock = threading.Lock()


class _OutputBuffer:
    """Outputs captured on any thread, waiting for the run's loop to show them."""

    def __init__(self, notify: Callable[[], None]) -> None:
        self.items: deque[dict[str, Any]] = deque()
        self.notify = notify
        self.header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": "notebook_workflows",
            "session": uuid.uuid4().hex,
            "date": datetime.now(timezone.utc),
            "version": "5.3",
        }

    def add(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self.notify()

    def step_setup(self) -> Callable[[], None]:
        """What runs in each step invocation's context before the step
        (``add_step_context``): point the kernel's stdout and stderr at our header. It runs
        for every invocation, so the variables are looked up once, here."""
        header = self.header
        out, err = (
            var.set if var else _ignore for var in map(_header_var, (sys.stdout, sys.stderr))
        )

        def setup() -> None:
            out(header)
            err(header)

        return setup


def _ignore(value: Any) -> None:
    pass


def _header_var(stream: Any) -> contextvars.ContextVar[Any] | None:
    """ipykernel's parent-header context variable of an output stream, if it has one."""
    var = getattr(stream, "_parent_header", None)
    return var if isinstance(var, contextvars.ContextVar) else None


def _stream_hook(msg: dict[str, Any]) -> dict[str, Any] | None:
    """On ipykernel's I/O thread: keep a monitored step's stream message for its monitor."""
    parent = msg.get("parent_header") or {}
    sink = _STREAM_SINKS.get(parent.get("msg_id", ""))
    if sink is None:
        return msg
    content = msg.get("content", {})
    sink.add(
        {"output_type": "stream", "name": content.get("name", "stdout"), "text": content["text"]}
    )
    return None


def _display_hook(msg: dict[str, Any]) -> dict[str, Any] | None:
    """On the thread calling ``display()``, in its context: keep a monitored step's display
    for its monitor (found, like its prints, by the header its stdout has there)."""
    var = _header_var(sys.stdout)
    parent = var.get(None) if var is not None else None
    sink = _STREAM_SINKS.get(parent.get("msg_id", "")) if isinstance(parent, dict) else None
    if sink is None:
        return msg
    kind = msg.get("header", {}).get("msg_type")
    content = msg.get("content", {})
    if kind == "display_data":
        sink.add(
            {
                "output_type": "display_data",
                "data": content.get("data", {}),
                "metadata": content.get("metadata", {}),
            }
        )
    elif kind == "clear_output":
        sink.add({"output_type": "clear", "wait": bool(content.get("wait"))})
    else:  # update_display_data: the frontend finds the display by its id
        return msg
    return None


def _hook_streams() -> bool:
    """Install the stream hook on ipykernel's I/O thread once; False where that cannot be."""
    with _lock:
        for stream in (sys.stdout, sys.stderr):
            if id(stream) in _hooked_streams:
                continue
            register = getattr(stream, "register_hook", None)
            pub_thread = getattr(stream, "pub_thread", None)
            if (
                register is None
                or pub_thread is None
                or not isinstance(getattr(stream, "_parent_header", None), contextvars.ContextVar)
            ):
                return False
            installed = threading.Event()

            def install(
                register: Callable[[Any], None] = register,
                installed: threading.Event = installed,
            ) -> None:
                register(_stream_hook)  # hooks are per thread: this runs on the I/O thread
                installed.set()

            pub_thread.schedule(install)
            if not installed.wait(5):
                return False
            _hooked_streams.add(id(stream))
        return True


def _hook_display() -> None:
    """Install the display hook on the calling thread (the run's loop thread) once."""
    from IPython import get_ipython

    shell = get_ipython()
    publisher = getattr(shell, "display_pub", None)
    hooks = getattr(publisher, "_hooks", None)
    if publisher is None or hooks is None or not hasattr(publisher, "register_hook"):
        return
    if _display_hook not in hooks:
        publisher.register_hook(_display_hook)


# -- models every monitor shares ---------------------------------------------------------------

_shared: dict[str, Any] = {}


def _shared_models(W: Any) -> dict[str, Any]:
    """The Layout, style models and stylesheet all monitors use: made once per kernel, and
    again if they were closed (``Widget.close_all()``, say)."""
    with _lock:
        if not _shared or any(getattr(w, "comm", None) is None for w in _shared.values()):
            layout = W.Layout()
            html_style = W.widgets.widget_string.HTMLStyle()
            _shared.update(
                layout=layout,
                html=html_style,
                button=W.ButtonStyle(),
                text=W.widgets.widget_string.TextStyle(),
                stylesheet=W.HTML(
                    _STYLE, layout=layout, style=html_style, _dom_classes=("nwm-style",)
                ),
            )
        return _shared


# -- drawing the graph off the loop -----------------------------------------------------------

_renderer: ThreadPoolExecutor | None = None
_SVG_SIZE = re.compile(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"')


def _render_pool() -> ThreadPoolExecutor:
    global _renderer
    with _lock:
        if _renderer is None:
            _renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nw-monitor-graph")
        return _renderer


def _graph_html(graph: WorkflowGraph) -> str:
    """The graph as an inline ``<svg>``, scaled down to ``GRAPH_HEIGHT`` when taller; the DOT
    text and an install hint when Graphviz cannot draw it (never a traceback)."""
    try:
        svg = _svg_element(graph.to_svg())
    except Exception as exc:
        return f'<div class="nwm-fallback">{graph._fallback_bundle(exc)["text/html"]}</div>'
    size = _SVG_SIZE.match(svg)
    if size is not None:
        width, height = (float(v) * 4 / 3 for v in size.groups())  # points to pixels
        scale = max(0.6, min(1.0, GRAPH_HEIGHT / height)) if height else 1.0
        svg = (
            f'<svg width="{width * scale:.0f}px" height="{height * scale:.0f}px"'
            + svg[size.end() :]
        )
    return f'<div class="nwm-svg">{svg}</div>'


# -- the monitor ----------------------------------------------------------------------------


class RunMonitor:
    """A live view of one run; display it in a notebook (``handler.monitor()``).

    Its parts are ipywidgets, reachable for tests and custom layouts: ``widget`` (the whole
    view), ``header`` (status, progress, result or error), ``graph``, ``store``, ``log``,
    ``cancel_button``; ``step_button`` for a stepwise run; and, once first needed, ``question``,
    ``answer`` and ``send`` (the input row for a question to a human) and ``output`` (what the
    steps printed or displayed). Those are ``None`` until then.
    """

    def __init__(self, handler: WorkflowHandler, *, log_size: int = LOG_SIZE) -> None:
        import ipywidgets as W

        self.handler = handler
        self._driver = driver = handler._driver
        self._loop = driver.loop
        self._started = driver.started_at
        # the log
        self._log: deque[Any] = deque(maxlen=log_size)
        self._log_total = 0  # entries ever logged (the deque keeps the last ``log_size``)
        self._logged = -1  # ``_log_total`` when the log was last drawn
        self._rows: dict[int, tuple[Any, _Row]] = {}  # id(entry) -> (entry, its row)
        self._unsubscribe: Callable[[], None] | None = None
        self._budget = LOG_BURST
        self._paused = False  # following no records until the run slows down
        self._gap: _Gap | None = None  # the log's pause, while it lasts
        self._gap_from = 0  # steps done when it paused
        self._pace = (0.0, 0)  # (loop time, steps done) at the last refresh
        self._stream_seen: Event | None = None  # the newest stream event logged
        self._logged_status = driver.status
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
        self._store_seen: dict[str, Any] = {}  # key -> encoded value at the last refresh
        self._store_rows: dict[str, tuple[str, str, str]] = {}
        self._store_changed: set[str] = set()
        self._outputs: list[dict[str, Any]] = []
        self._clear_on_next = False
        self._graph_source = ""  # the DOT text shown or being drawn
        self._graph_busy = False
        self._graph_next: WorkflowGraph | None = None
        # time.monotonic() before which no drawing begins: the first waits a refresh
        # interval, so a run shorter than that is drawn once, when it has ended
        self._graph_not_before = time.monotonic() + REFRESH_INTERVAL
        self._graph_timer: Any = None
        # actions
        self._shown_question: Event | None = None
        self._answered: list[Event] = []
        self._enter_pending = False
        self._stepping = False
        self._note = ""
        self._display_id = uuid.uuid4().hex
        self._displayed = False
        self._remove_step_context: Callable[[], None] | None = None

        self._store_drawn = False
        self._outputs_changed = False
        self._built = False
        self._W = W
        self.question: ipywidgets.HTML | None = None
        self.answer: ipywidgets.Text | None = None
        self.send: ipywidgets.Button | None = None
        self._ask_row: ipywidgets.HBox | None = None
        self.output: ipywidgets.Output | None = None
        self.step_button: ipywidgets.Button | None = None

        self._capture: _OutputBuffer | None = None
        if in_notebook_kernel() and _hook_streams():
            self._capture = _OutputBuffer(self._output_arrived)
            _STREAM_SINKS[self._capture.header["msg_id"]] = self._capture

        self._on_loop(self._attach)

    def _build(self, stats: RunStats) -> None:
        """Make the widgets, with the run as it is now: their first state travels with their
        creation, not in a second message. The parts are the root's children, placed by the
        stylesheet's grid, and share one Layout and one style model per kind with every other
        monitor."""
        W = self._W
        shared = _shared_models(W)
        self._layout = shared["layout"]
        self._html_style = shared["html"]
        self._button_style = shared["button"]
        self._text_style = shared["text"]
        driver = self._driver
        parts = [shared["stylesheet"]]
        self.header = self._html(self._header_html(stats), "nwm-header")
        self.cancel_button = self._button(
            "Cancel", "stop", "cancel the run", "nwm-cancel", disabled=driver.finished
        )
        self.cancel_button.on_click(lambda _: self._post(self._cancel))
        if driver.stepwise and not driver.finished:
            self.step_button = self._button("Step", "step-forward", "run one step", "nwm-step")
            self.step_button.on_click(lambda _: self._post(self._step))
            parts.append(self.step_button)
        self.graph = self._html('<div class="nwm-dim">drawing the graph…</div>', "nwm-graph")
        self.store = self._html(self._store_update() or "", "nwm-store")
        self.log = self._html(self._log_update() or "", "nwm-logbox")
        parts += [self.header, self.cancel_button, self.graph, self.store, self.log]
        self.widget = W.VBox(parts, layout=self._layout, _dom_classes=("nwm",))
        self._built = True
        self._render_question()
        self._request_graph()

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

    # -- threads ------------------------------------------------------------------------------

    def _loop_alive(self) -> bool:
        loop = self._loop
        return loop.is_running() and not loop.is_closed()

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the run's loop thread, waiting for it; directly once that loop stopped."""
        if self._driver.in_loop_thread() or not self._loop_alive():
            return fn()
        return self._driver.read(fn)

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the run's loop thread soon (from any thread)."""
        if self._driver.in_loop_thread():
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
        driver = self._driver
        self._catch_up_stream(at=None)  # what the run wrote before the monitor came
        if self._capture is not None and not driver.finished:
            _hook_display()
            self._remove_step_context = self.handler.add_step_context(self._capture.step_setup())
        self._build(self.handler.stats())
        self._last_refresh = self._loop.time() if self._loop_alive() else float("-inf")
        if driver.finished:
            self._finish()
            return
        # The run's end draws the last picture even while the log pauses; registered before
        # ``await handler`` usually is, so it runs before the awaiting code resumes.
        driver.result.add_done_callback(lambda _: self._finish())
        self._pace = (self._loop.time(), driver.state.steps_done)
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
        self._gap_from = self._driver.state.steps_done

    def _on_item(self, item: Any) -> None:
        """The run's listener: called for every step start and finish, so keep this short."""
        cls = item.__class__
        if cls is StepStarted or cls is StepFinished:
            self._log.append(item)
            self._log_total += 1
            self._budget -= 1
            if self._budget <= 0:
                self._pause()
            if not self._scheduled:
                self._schedule()
            return
        if item is _END:
            self._finish()
            return
        if cls is RunStatusChanged:
            self._status_detail = item.detail
            self._logged_status = item.status
            self._log.append(item)
        elif cls is StepFailed:
            self._log.append(item)
        elif isinstance(item, Event):
            inv = current_invocation()
            self._log.append(_Published(item, inv.step if inv is not None else "", time.time()))
            self._stream_seen = item
        else:
            return
        self._log_total += 1
        if not self._scheduled:
            self._schedule()

    def _catch_up_stream(self, at: float | None) -> None:
        """Log the stream events the listener did not see (before it came, or in a pause)."""
        missed: list[Event] = []
        for event in reversed(self._driver.stream_log):
            if event is self._stream_seen:
                break
            missed.append(event)
            if len(missed) >= self._log.maxlen:  # type: ignore[operator]
                break
        for event in reversed(missed):
            self._log.append(_Published(event, "", at))
            self._log_total += 1
        if missed:
            self._stream_seen = missed[0]

    def _paused_log(self, stats: RunStats, now: float) -> None:
        """While the log pauses: count the steps it missed, catch up on stream events and
        status changes, and follow again once the run has slowed down."""
        if self._gap is None:
            self._gap = _Gap(time.time())
            self._log.append(self._gap)
            self._log_total += 1
        steps = max(0, stats.steps_done - self._gap_from)
        if steps != self._gap.steps:
            self._gap.steps = steps
            self._logged = -1  # the gap's line changed: redraw the log
        self._catch_up_stream(at=time.time())
        if stats.status != self._logged_status:
            self._logged_status = stats.status
            self._log.append(RunStatusChanged(stats.run_id, stats.status, "", time.time()))
            self._log_total += 1
        since, done = self._pace
        records_per_second = 2 * (stats.steps_done - done) / max(now - since, 1e-3)
        if records_per_second < LOG_BURST / REFRESH_INTERVAL / 2 and not self._driver.finished:
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
        if self._driver.in_loop_thread():
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
            for stream in (sys.stdout, sys.stderr):
                # what steps printed reaches the capture hook first (a flush waits for the
                # kernel's I/O thread, so only when something waits to be written)
                if getattr(stream, "_flush_pending", True):
                    with contextlib.suppress(Exception):
                        stream.flush()
        if self._displayed:
            # The static picture first: publishing waits for the kernel to send what went
            # before it, which then does not include the widget updates that follow.
            self._absorb(self.handler.stats(), self._loop.time())
            self._publish_final()
        self._refresh()

    # -- drawing (on the loop thread) ---------------------------------------------------------

    def _render(self) -> None:
        self._refreshes += 1
        stats = self.handler.stats()
        now = self._loop.time()
        self._absorb(stats, now)
        self._pace = (now, stats.steps_done)
        _set(self.header, value=self._header_html(stats))
        self._render_buttons()
        self._render_question()
        store = self._store_update()
        if store is not None:
            _set(self.store, value=store)
        log = self._log_update()
        if log is not None:
            _set(self.log, value=log)
        self._render_output()
        self._request_graph()

    def _absorb(self, stats: RunStats, now: float) -> None:
        """Bring the log and the captured output up to date (no widget is touched)."""
        if self._paused:
            self._paused_log(stats, now)
        capture = self._capture
        if capture is not None and capture.items:
            self._take_outputs(capture)

    def _header_html(self, stats: RunStats) -> str:
        e = html.escape
        colour = STATUS_COLOURS.get(stats.status, "#4a5568")
        lines = [
            f'<div class="nwm-head"><span class="nwm-name">{e(stats.workflow)}</span>'
            f'<span class="nwm-dim">run</span><code>{e(stats.run_id)}</code>'
            f'<span class="nwm-pill" style="background:{colour}">{e(stats.status)}</span>'
            f'<span class="nwm-dim">{duration(stats.elapsed)}</span></div>',
            self._progress_html(stats),
        ]
        lines.extend(self._notices(stats))
        return "".join(lines)

    def _progress_html(self, stats: RunStats) -> str:
        e = html.escape
        done = stats.steps_done
        parts = [f"<b>{done}</b> {plural(done, 'step')} done"]
        running = len(stats.running)
        names = ", ".join(sorted(set(stats.running)))
        parts.append(
            f'<b class="running">{running}</b> running ({e(names)})' if running else "0 running"
        )
        queued = sum(stats.queued.values())
        where = ", ".join(f"{e(k)} {v}" for k, v in sorted(stats.queued.items()))
        parts.append(f"<b>{queued}</b> queued" + (f" ({where})" if where else ""))
        if stats.waiting:
            names = ", ".join(sorted(set(stats.waiting)))
            parts.append(f"<b>{len(stats.waiting)}</b> waiting ({e(names)})")
        if stats.questions:
            n = len(stats.questions)
            parts.append(f'<b class="waiting">{n}</b> {plural(n, "question")} open')
        return f'<div class="nwm-progress">{" · ".join(parts)}</div>'

    def _notices(self, stats: RunStats) -> list[str]:
        e = html.escape
        driver = self._driver
        lines: list[str] = []
        for step, error in stats.failed.items():
            trace = ""
            if driver.error is not None:
                if self._traceback is None:
                    # formatted once, as the run ended: code that awaits the run and re-raises
                    # the error later adds its own frames to the same traceback
                    self._traceback = _error_text(driver.error)
                trace = (
                    f"<details><summary>traceback</summary>"
                    f"<pre>{e(self._traceback)}</pre></details>"
                )
            lines.append(
                f'<div class="nwm-failed">✖ step <b>{e(step)}</b> failed: '
                f"{e(short_text(error, 300))}{trace}</div>"
            )
        if stats.status == "failed" and not stats.failed and driver.error is not None:
            lines.append(f'<div class="nwm-failed">✖ {e(short_text(str(driver.error), 300))}</div>')
        if stats.status == "cancelled":
            why = f": {e(self._status_detail)}" if self._status_detail else ""
            lines.append(f'<div class="nwm-cancelled">■ cancelled{why}</div>')
        result = self._result()
        if result is not _MISSING:
            lines.append(
                f'<div class="nwm-done">✔ result: <code>{e(short(result, 200))}</code></div>'
            )
        if driver.checkpoint is not None and stats.status != "done":
            lines.append(
                '<div class="nwm-dim">↻ checkpointed: continue it later, even after a restart, '
                f"with <code>{e(f'workflow.resume({stats.run_id!r})')}</code></div>"
            )
        if self._note:
            lines.append(f'<div class="nwm-dim">{e(self._note)}</div>')
        return lines

    def _result(self) -> Any:
        future = self._driver.result
        if self._driver.status != "done" or not future.done() or future.cancelled():
            return _MISSING
        return future.result()

    def _render_buttons(self) -> None:
        driver = self._driver
        _set(self.cancel_button, disabled=driver.finished)
        if self.step_button is not None:
            stepping = driver.stepwise and not driver.finished
            _show(self.step_button, stepping)
            _set(self.step_button, disabled=self._stepping or not stepping)

    def _render_question(self) -> None:
        driver = self._driver
        open_ = [] if driver.finished else list(driver.state.questions)
        self._answered = [a for a in self._answered if any(a is q for q in open_)]
        waiting = [q for q in open_ if not any(q is a for a in self._answered)]
        if not waiting:
            self._shown_question = None
            if self._ask_row is not None:
                _show(self._ask_row, False)
            return
        question = waiting[0]
        if question is not self._shown_question:
            self._shown_question = question
            self._new_answer_box()
        assert self.question is not None and self.send is not None and self._ask_row is not None
        prompt = str(question.get("prefix", "")) or "The run asks for input:"
        more = len(waiting) - 1
        extra = f' <span class="nwm-dim">(+{more} more)</span>' if more else ""
        _set(self.question, value=f'<span class="nwm-prompt">{html.escape(prompt)}</span>{extra}')
        _set(self.send, disabled=False)
        _show(self._ask_row, True)

    def _new_answer_box(self) -> None:
        """A fresh box per question: see the module docstring."""
        W = self._W
        box = W.Text(
            continuous_update=False,
            placeholder="your answer, then Enter or Send",
            layout=self._layout,
            style=self._text_style,
        )
        box.observe(lambda _: self._post(self._answer_arrived, box), names="value")
        box.on_msg(lambda _, content, __: self._answer_message(box, content))
        old = self.answer
        self._enter_pending = False
        if self._ask_row is None:
            self.question = self._html("", "nwm-question")
            self.send = self._button(
                "Send", "paper-plane", "send the answer", "nwm-send", button_style="primary"
            )
            self.send.on_click(lambda _: self._post(self._send_answer))
            self._ask_row = W.HBox(
                [self.question, box, self.send], layout=self._layout, _dom_classes=("nwm-ask",)
            )
            self.widget.children = (*self.widget.children, self._ask_row)
        else:
            self._ask_row.children = (self.question, box, self.send)
        self.answer = box  # last: other threads see the box only with its row complete
        if old is not None:
            old.close()

    def _store_update(self) -> str | None:
        """The store table if it changed since the last refresh (``None`` if not)."""
        encoded = self.handler.ctx.store._encoded()
        seen = self._store_seen
        changed: set[str] = set()
        for key, value in encoded.items():
            old = seen.get(key, _MISSING)
            if old is value or (old is not _MISSING and old == value):
                continue
            changed.add(key)
            try:
                self._store_rows[key] = store_rows({key: decode(value, path=key)})[0]
            except Exception as exc:  # show what cannot be read instead of failing
                self._store_rows[key] = (key, "?", f"<unreadable: {exc!r}>")
        gone = [k for k in self._store_rows if k not in encoded]
        for key in gone:
            del self._store_rows[key]
        self._store_seen = encoded
        if not changed and not gone and not self._store_changed and self._store_drawn:
            return None
        self._store_changed = changed
        self._store_drawn = True
        return self._store_html()

    def _store_html(self) -> str:
        e = html.escape
        title = '<div class="nwm-title">store</div>'
        if not self._store_rows:
            return title + '<div class="nwm-dim">empty</div>'
        keys = sorted(self._store_rows)
        rows = []
        for key in keys[:STORE_ROWS]:
            _, typ, value = self._store_rows[key]
            mark = key in self._store_changed
            rows.append(
                f'<tr class="{"changed" if mark else ""}"><td class="mark" title="changed">'
                f"{'●' if mark else ''}</td><td><code>{e(key)}</code></td>"
                f'<td class="nwm-dim">{e(typ)}</td><td><code>{e(value)}</code></td></tr>'
            )
        more = len(keys) - STORE_ROWS
        tail = f'<div class="nwm-dim">… and {more} more keys</div>' if more > 0 else ""
        return (
            f"{title}<table><tr><th></th><th>key</th><th>type</th><th>value</th></tr>"
            f"{''.join(rows)}</table>{tail}"
        )

    def _log_rows(self) -> list[_Row]:
        """The log's lines, oldest first. A step start whose finish (or failure) is logged
        later shows no line of its own: the finish's line says what went in and came out."""
        ended: set[int] = set()
        shown: list[Any] = []
        for item in reversed(self._log):
            cls = item.__class__
            if cls is StepFinished or cls is StepFailed:
                ended.add(id(item.event))
            elif cls is StepStarted and id(item.event) in ended:
                ended.discard(id(item.event))  # an earlier attempt may have ended too
                continue
            shown.append(item)
        shown.reverse()
        rows: list[_Row] = []
        cache = self._rows
        fresh: dict[int, tuple[Any, _Row]] = {}
        memo: _Memo = {}
        for item in shown:
            hit = cache.get(id(item))
            if hit is not None and hit[0] is item and item.__class__ is not _Gap:
                row = hit[1]
            else:
                row = _Row(item, self._started, memo)
            fresh[id(item)] = (item, row)
            rows.append(row)
        self._rows = fresh
        return rows

    def _log_update(self) -> str | None:
        """The log if it changed since the last refresh (``None`` if not)."""
        if self._log_total == self._logged:
            return None
        self._logged = self._log_total
        rows = self._log_rows()
        dropped = self._log_total - len(self._log)
        title = f"events · {dropped:,} older ones not kept" if dropped > 0 else "events"
        body = "".join(row.html for row in rows) or '<div class="nwm-dim">none yet</div>'
        # column-reverse keeps the box scrolled to its end: the newest entry, at the bottom
        return f'<div class="nwm-title">{title}</div><div class="nwm-log"><div>{body}</div></div>'

    def _take_outputs(self, capture: _OutputBuffer) -> None:
        """Move captured outputs into the monitor's list: consecutive prints to one stream
        make one output, ``clear_output`` clears, the list and each text stay bounded."""
        outputs = self._outputs
        while capture.items:
            item = capture.items.popleft()
            if item["output_type"] == "clear":
                if item["wait"]:
                    self._clear_on_next = True
                else:
                    outputs.clear()
                continue
            if self._clear_on_next:
                outputs.clear()
                self._clear_on_next = False
            last = outputs[-1] if outputs else None
            if (
                item["output_type"] == "stream"
                and last is not None
                and last["output_type"] == "stream"
                and last["name"] == item["name"]
            ):
                text = (last["text"] + item["text"])[-STREAM_CHARS:]
                outputs[-1] = {**last, "text": text}  # a new dict: the trait must see a change
            else:
                outputs.append(item)
        del outputs[:-OUTPUT_ITEMS]
        self._outputs_changed = True

    def _render_output(self) -> None:
        if not self._outputs_changed:
            return
        self._outputs_changed = False
        if self.output is None:
            self.output = self._W.Output(layout=self._layout, _dom_classes=("nwm-output",))
            self.widget.children = (*self.widget.children, self.output)
        _set(self.output, outputs=tuple(self._outputs))

    def _request_graph(self) -> None:
        graph = WorkflowGraph.of_run(self.handler)
        if graph.source == self._graph_source:
            return
        self._graph_source = graph.source
        self._graph_next = graph  # the newest wins: older ones not yet drawn are skipped
        self._draw_graph()

    def _draw_graph(self) -> None:
        """Hand the newest graph to the renderer when it is free and ``GRAPH_INTERVAL`` has
        passed since the last drawing began (at once for the run's last picture)."""
        graph = self._graph_next
        if graph is None or self._graph_busy:
            return
        wait = self._graph_not_before - time.monotonic()
        if wait > 0 and not self._final and self._loop_alive():
            if self._graph_timer is None:
                self._graph_timer = self._loop.call_later(wait, self._graph_timer_fired)
            return
        self._graph_next = None
        self._graph_busy = True
        self._graph_not_before = time.monotonic() + GRAPH_INTERVAL

        def draw() -> None:
            self._post(self._graph_drawn, _graph_html(graph))

        try:
            _render_pool().submit(draw)
        except RuntimeError:  # the interpreter is shutting down
            self._graph_busy = False

    def _graph_timer_fired(self) -> None:
        self._graph_timer = None
        self._draw_graph()

    def _graph_drawn(self, drawn: str) -> None:
        self._graph_busy = False
        _set(self.graph, value=f'<div class="nwm-title">graph</div>{drawn}')
        self._draw_graph()

    # -- actions (on the loop thread; widget callbacks hand them over with ``_post``) ---------

    def _answer_message(self, box: ipywidgets.Text, content: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            self._post(self._enter_pressed, box)

    def _enter_pressed(self, box: ipywidgets.Text) -> None:
        """Enter: the box's new value follows this message; send it when it arrives, or the
        value the kernel has if none comes (it was sent when the box lost focus)."""
        if box is not self.answer:
            return
        self._enter_pending = True
        if self._loop_alive():
            self._loop.call_later(ENTER_GRACE, self._enter_timeout, box)
        else:
            self._enter_timeout(box)

    def _enter_timeout(self, box: ipywidgets.Text) -> None:
        if self._enter_pending and box is self.answer:
            self._send_answer()

    def _answer_arrived(self, box: ipywidgets.Text) -> None:
        if self._enter_pending and box is self.answer and box.value:
            self._send_answer()

    def _send_answer(self) -> None:
        self._enter_pending = False
        question, box = self._shown_question, self.answer
        if question is None or box is None or box.disabled or self._driver.finished:
            return
        value = box.value
        answer = HumanResponseEvent(response=value)
        try:
            self.handler.ctx.send_event(answer)
        except Exception as exc:
            self._note = f"could not send the answer: {exc}"
        else:
            self._answered.append(question)
            _set(box, value="", disabled=True)
            if self.send is not None:
                _set(self.send, disabled=True)
            self._log.append(_Published(answer, "(you)", time.time()))
            self._log_total += 1
        if not self._scheduled:
            self._schedule()

    def _cancel(self) -> None:
        if not self._driver.finished:
            self._status_detail = "cancelled from the run monitor"  # shown even if the log paused
            self._driver.cancel(self._status_detail)

    def _step(self) -> None:
        if self._stepping or self._driver.finished or not self._driver.stepwise:
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

    # -- text, display and the saved picture --------------------------------------------------

    def __repr__(self) -> str:
        stats = self.handler.stats()
        n = stats.steps_done
        return (
            f"RunMonitor({stats.workflow}, run {stats.run_id!r}, {stats.status}, "
            f"{n} {plural(n, 'step')})"
        )

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        return {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.widget.model_id,
            },
            "text/plain": repr(self),
            "text/html": self._on_loop(self._static_html),
        }

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)
        self._displayed = True

    def _publish_final(self) -> None:
        """Update the displayed monitor with its final bundle, so a saved notebook keeps the
        finished run (JupyterLab and nbclient update each output with this display id).

        The update goes out under the kernel's current request, the cell that awaits the run,
        which is what nbclient listens to. A run that ends between cells (displayed in one,
        awaited in a later one, or not awaited at all) has no such cell, so the update is sent
        once more when the next cell starts."""
        if not in_notebook_kernel():
            return
        self._update_display()
        from IPython import get_ipython

        events = getattr(get_ipython(), "events", None)
        if events is None:
            return

        def again(*_: Any) -> None:
            events.unregister("pre_run_cell", again)
            self._update_display()

        events.register("pre_run_cell", again)

    def _update_display(self) -> None:
        from IPython.display import update_display

        try:
            bundle = self._repr_mimebundle_()
            # In an empty context: no step's output capture, and the kernel's current
            # request as the parent.
            contextvars.Context().run(update_display, bundle, raw=True, display_id=self._display_id)
        except Exception:
            logger.exception("notebook_workflows: could not update the monitor's display")

    def _static_html(self) -> str:
        """The run as static HTML: the handler's card, the result, the log and the output."""
        e = html.escape
        parts = ['<div class="nw-run-monitor">', handler_html(self.handler)]
        result = self._result()
        if result is not _MISSING:
            parts.append(f"<div>result: <code>{e(short(result, 200))}</code></div>")
        rows = self._log_rows()[-STATIC_LOG_ROWS:]
        if rows:
            body = "".join(
                f'<tr><td style="color:#718096;padding-right:10px">{r.time}</td>'
                f"<td>{e(r.step)}</td><td>{e(r.kind)}</td><td><code>{e(r.summary)}</code></td></tr>"
                for r in rows
            )
            shown = f"events (the last {len(rows)} of {self._log_total:,})"
            title = shown if self._log_total > len(rows) else "events"
            parts.append(_table(title, ("time", "step", "event", "summary"), body))
        text = "".join(o["text"] for o in self._outputs if o["output_type"] == "stream")
        if text:
            parts.append(
                '<div style="margin-top:6px"><b>output of steps</b>'
                f'<pre style="max-height:20em;overflow:auto">{e(text[-5000:])}</pre></div>'
            )
        parts.append("</div>")
        return "".join(parts)


# -- helpers ----------------------------------------------------------------------------------

_MISSING: Any = object()


def _set(widget: Any, **traits: Any) -> None:
    """Set the traits that changed, as one message (``hold_sync``); none if nothing did."""
    changed = {k: v for k, v in traits.items() if getattr(widget, k) != v}
    if not changed:
        return
    with widget.hold_sync():
        for key, value in changed.items():
            setattr(widget, key, value)


def _show(widget: Any, visible: bool) -> None:
    hidden = _HIDDEN in widget._dom_classes
    if visible and hidden:
        widget.remove_class(_HIDDEN)
    elif not visible and not hidden:
        widget.add_class(_HIDDEN)


# The monitor's look: JupyterLab's theme variables (light and dark), with fallbacks elsewhere.
# Parts share one Layout model, so sizes and visibility live here, keyed by class.
_STYLE = """<style>
.nwm { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  color: var(--jp-ui-font-color1, #1f2328); border: 1px solid var(--jp-border-color2, #d0d7de);
  border-radius: 8px; padding: 8px 12px 10px; max-width: 1100px; box-sizing: border-box;
  display: grid !important; grid-template-columns: fit-content(62%) minmax(0, 1fr) auto auto;
  grid-template-areas: "head head step cancel" "ask ask ask ask" "graph store store store"
    "log log log log" "out out out out"; gap: 0; align-items: start; }
.nwm > .nwm-style, .nwm .nwm-hidden { display: none !important; }
.nwm > .nwm-header { grid-area: head; min-width: 0; }
.nwm > .nwm-step { grid-area: step; margin: 0 0 0 6px; width: auto; }
.nwm > .nwm-cancel { grid-area: cancel; margin: 0 0 0 6px; width: auto; }
.nwm > .nwm-ask { grid-area: ask; margin-top: 8px; }
.nwm > .nwm-graph { grid-area: graph; margin-top: 10px; padding-right: 28px; min-width: 0; }
.nwm > .nwm-store { grid-area: store; margin-top: 10px; min-width: 0; }
.nwm > .nwm-logbox { grid-area: log; margin-top: 10px; min-width: 0; }
.nwm > .nwm-output { grid-area: out; margin-top: 10px; min-width: 0; }
.nwm > .nwm-ask { min-width: 0; }
.nwm .widget-html, .nwm .widget-html-content { line-height: 1.45; margin: 0; height: auto;
  min-width: 0; }
.nwm code { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  background: var(--jp-layout-color2, #f6f8fa); padding: 0 4px; border-radius: 3px; }
.nwm-head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; font-size: 14px; }
.nwm-name { font-weight: 600; font-size: 15px; }
.nwm-pill { color: #fff; border-radius: 999px; padding: 0 10px; font-weight: 600;
  font-size: 12px; line-height: 20px; }
.nwm-dim { color: var(--jp-ui-font-color2, #59636e); }
.nwm-title { font-size: 11px; text-transform: uppercase; letter-spacing: .05em;
  color: var(--jp-ui-font-color2, #59636e); margin: 2px 0 3px; font-weight: 600; }
.nwm-progress { color: var(--jp-ui-font-color2, #59636e); margin-top: 2px; }
.nwm-progress b { color: var(--jp-ui-font-color1, #1f2328); }
.nwm-progress b.running { color: #e8590c; }
.nwm-progress b.waiting { color: #b7791f; }
.nwm-failed { color: #c53030; margin-top: 2px; }
.nwm-failed pre { white-space: pre-wrap; font-size: 11.5px; max-height: 18em; overflow: auto;
  color: var(--jp-ui-font-color1, #1f2328); }
.nwm-done { color: #2f855a; margin-top: 2px; }
.nwm-cancelled { color: #718096; margin-top: 2px; }
.nwm-ask { align-items: center; gap: 8px; padding: 6px 10px; margin: 0;
  border-left: 4px solid #c48a0f; background: rgba(255, 214, 102, .16); border-radius: 4px; }
.nwm-ask .widget-text { flex: 1 1 auto; width: auto; margin: 0; }
.nwm-ask .jupyter-button { width: auto; margin: 0; }
.nwm-question { flex: 0 1 auto; }
.nwm-prompt { font-weight: 600; }
.nwm-svg { overflow: auto; max-height: 560px; }
.nwm-svg svg { max-width: 100%; height: auto; }
.nwm-fallback pre { max-height: 16em; overflow: auto; font-size: 11px; }
.nwm-store table { border-collapse: collapse; width: 100%; font-size: 12px; }
.nwm-store th { text-align: left; font-weight: 600; color: var(--jp-ui-font-color2, #59636e);
  border-bottom: 1px solid var(--jp-border-color2, #d0d7de); padding: 2px 6px; }
.nwm-store td { padding: 2px 6px; border-bottom: 1px solid var(--jp-border-color3, #eaeef2);
  vertical-align: top; word-break: break-word; }
.nwm-store td.mark { color: #c48a0f; width: 1em; padding-right: 0; }
.nwm-store tr.changed td { background: rgba(255, 196, 0, .14); }
.nwm-log { display: flex; flex-direction: column-reverse; max-height: 240px; overflow-y: auto;
  border: 1px solid var(--jp-border-color2, #d0d7de); border-radius: 6px; }
.nwm-log summary, .nwm-log > div > div { display: flex; gap: 10px; list-style: none;
  padding: 1px 8px; white-space: nowrap; font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; }
.nwm-log summary { cursor: pointer; }
.nwm-log summary::-webkit-details-marker { display: none; }
.nwm-log > div > :nth-child(even) > summary, .nwm-log > div > div:nth-child(even) {
  background: var(--jp-layout-color2, #f6f8fa); }
.nwm-log summary:hover { background: var(--jp-layout-color3, #eaeef2); }
.nwm-log .t { flex: none; width: 8ch; text-align: right; color: var(--jp-ui-font-color2, #59636e); }
.nwm-log .s { flex: none; width: 12ch; overflow: hidden; text-overflow: ellipsis; }
.nwm-log .k { flex: none; width: 18ch; color: var(--jp-ui-font-color2, #59636e); }
.nwm-log .m { flex: 1 1 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; }
.nwm-log .failed .k, .nwm-log .failed .m { color: #c53030; }
.nwm-log .retry .k { color: #b7791f; }
.nwm-log .question .k, .nwm-log .answer .k { color: #b7791f; font-weight: 600; }
.nwm-log .stop .k { color: #6a55b0; font-weight: 600; }
.nwm-log .event .k { color: #1d6fd1; }
.nwm-log .status .m, .nwm-log .gap .m { font-style: italic;
  color: var(--jp-ui-font-color2, #59636e); }
.nwm-log pre { margin: 2px 8px 6px 4ch; padding: 6px 8px; white-space: pre-wrap;
  background: var(--jp-layout-color2, #f6f8fa); border-radius: 4px; font-size: 11.5px;
  max-height: 16em; overflow: auto; }
.nwm-output { border: 1px solid var(--jp-border-color2, #d0d7de); border-radius: 6px;
  padding: 2px 8px; }
.nwm-output::before { content: "output of steps"; display: block; font-size: 11px;
  text-transform: uppercase; letter-spacing: .05em; font-weight: 600; margin: 2px 0;
  color: var(--jp-ui-font-color2, #59636e); }
.nwm-output .jp-OutputArea-output pre { font-size: 12px; }
</style>"""
