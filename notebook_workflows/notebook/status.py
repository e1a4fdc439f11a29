"""The line of status a run shows in the notebook cell that awaits it.

A plain ``await w.run(...)`` used to show nothing until the run ended: a cell at ``[*]`` for
thirty seconds, and no run id until an error named it. Now such a cell shows one line while the
run goes on, ``run 'score-3f9a0c1e' · 12 steps · 3.4 s · running score (8 calls)``, with a bar
while many calls of one step wait or run, and the line ends as a summary above the cell's
result: ``run 'score-3f9a0c1e' · 40 steps · 6.1 s · done``. Decisions:

- **Only where someone waits, and only for long enough.** The engine calls ``follow`` for every
  run started in a notebook kernel with its ``progress`` on (``run(progress=...)``,
  ``notebook_workflows.settings.progress``). The line appears only if, ``SHOW_AFTER`` seconds
  later, the run is still going and the cell that started it has not ended: a quick run shows
  nothing (saved notebooks keep the outputs they had), and so does ``h = w.run()`` alone in a
  cell. A run started by a step of another run, a stepwise run and a run whose monitor is shown
  get no line either: the outer run's line, the cell's stepping and the monitor say more.
- **A timer, not the steps.** Nothing subscribes to the run: every ``INTERVAL`` seconds a timer
  on the run's loop reads one ``handler.view()`` and updates the line, so a run of ten thousand
  steps costs the same few updates as a run of ten, fewer than a monitor's refreshes.
- **In the cell, updated in place.** The line is displayed with a display id and updated under
  the context the run started in: ipykernel keeps the cell a message belongs to in a context
  variable, so the line goes to that cell even from ``run_sync``'s helper thread. The run's end
  updates it to the summary from a callback registered when the run started, before any
  ``await`` of it, so the summary is sent before the awaiting code goes on and sits above the
  result; a saved notebook keeps it.
- **HTML only.** Whether the line appears at all, and the time it shows, depend on the
  machine's speed; nbval compares no HTML here (``notebooks/conftest.py``), so a line that
  appears in one execution of a notebook and not in the next changes nothing it compares. The
  HTML has no colours of its own: it takes the theme's text colour, light or dark.

The engine calls in only in a notebook kernel, where IPython is loaded already.
"""

from __future__ import annotations

import html
import logging
import sys
import uuid
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..runtime.view import current_invocation_var
from .display import plural

if TYPE_CHECKING:
    from ..handler import WorkflowHandler
    from ..runtime.view import RunView

__all__ = ["StatusLine", "follow", "monitor_shown", "status_text"]

logger = logging.getLogger("notebook_workflows")

SHOW_AFTER = 0.5  # seconds a run goes on, with its cell still waiting, before it shows a line
INTERVAL = 0.25  # seconds between updates of a shown line
FANOUT = 8  # calls of one step waiting or running that earn the line a bar
BAR_CELLS = 20

# Handlers whose monitor was displayed: their monitor shows what the line would, and more.
_monitored: weakref.WeakSet[Any] = weakref.WeakSet()


def monitor_shown(handler: WorkflowHandler) -> None:
    """A monitor of ``handler``'s run is displayed: its cell needs no status line."""
    _monitored.add(handler)


def follow(handler: WorkflowHandler) -> StatusLine | None:
    """The engine's door for a run just started in a notebook kernel with its status on: a
    ``StatusLine`` that will show itself if the cell that started the run still waits for it
    after ``SHOW_AFTER`` seconds; None for a run no cell waits for (started by a step of
    another run, or while no cell runs) or outside a kernel with a frontend."""
    if current_invocation_var.get() is not None:  # a step started it: the outer run shows
        return None
    try:
        cells = _cells()
        if cells is None or not cells.executing:
            return None
        return StatusLine(handler, cells)
    except Exception:  # a display problem must never keep a run from starting
        logger.exception("notebook_workflows: the run's status line could not be set up")
        return None


class StatusLine:
    """One run's line of status in the cell that started it (see the module docstring)."""

    def __init__(self, handler: WorkflowHandler, cells: _CellCount) -> None:
        self.handler = handler
        self.display_id: str | None = None  # set once the line is shown
        self._cells = cells
        self._cell = cells.ended  # while this count stays, the starting cell runs on
        self._fanout: str | None = None  # the step whose calls the bar counts
        self._loop = handler.loop
        self._timer: Any = self._loop.call_later(SHOW_AFTER, self._tick)
        handler.add_done_callback(self._end)

    @property
    def shown(self) -> bool:
        return self.display_id is not None

    def _tick(self) -> None:
        self._timer = None
        if self.handler.done():
            return  # the end callback writes the summary
        try:
            go_on = self._draw(self.handler.view())
        except Exception:  # a display problem must never disturb the run
            logger.exception("notebook_workflows: the run's status line could not be shown")
            return
        if go_on:
            self._timer = self._loop.call_later(INTERVAL, self._tick)

    def _draw(self, view: RunView) -> bool:
        """Show or update the line; False when it should not be updated again."""
        if not self.shown:
            if not self._may_show(view):
                return False
            self.display_id = uuid.uuid4().hex
            _publish(_html(self.text(view)), self.display_id, update=False)
            return True
        if self._cells.ended != self._cell:  # the cell went on without awaiting the run
            self._update(self.text(view) + " · no cell waits for it")
            return False
        self._update(self.text(view))
        return True

    def _may_show(self, view: RunView) -> bool:
        return (
            self._cells.ended == self._cell
            and not view.finished
            and not view.stepwise
            and self.handler not in _monitored
        )

    def _end(self, handler: Any = None) -> None:
        """The run ended: cancel the timer, and end a shown line with the summary."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.shown:
            return
        try:
            self._update(status_text(self.handler.view()))
        except Exception:
            logger.exception("notebook_workflows: the run's status line could not be ended")

    def _update(self, text: str) -> None:
        assert self.display_id is not None
        _publish(_html(text), self.display_id, update=True)

    def text(self, view: RunView) -> str:
        """The line for ``view``, with the bar of a fan-out while one lasts."""
        return status_text(view, self._fanout_of(view))

    def _fanout_of(self, view: RunView) -> tuple[str, int, int] | None:
        """``(step, done, of)`` for the step with the most calls waiting or running, once
        those are ``FANOUT`` or more; kept for that step until none of its calls is left."""
        left = Counter(view.running)
        left.update(view.queued)
        step = self._fanout
        if step is None or not left[step]:
            step, most = left.most_common(1)[0] if left else ("", 0)
            if most < FANOUT:
                self._fanout = None
                return None
            self._fanout = step
        done = view.step_runs.get(step, 0)
        return step, done, done + left[step]


def status_text(view: RunView, fanout: tuple[str, int, int] | None = None) -> str:
    """``run 'id' · N steps · T · state``: what the run is doing now, or how it ended; with
    ``fanout`` (``(step, done, of)``), a bar of that step's calls."""
    n = view.steps_done
    line = f"run {view.run_id!r} · {n:,} {plural(n, 'step')} · {seconds(view.elapsed)}"
    state = _state(view, fanout if not view.finished else None)
    return f"{line} · {state}"


def _state(view: RunView, fanout: tuple[str, int, int] | None) -> str:
    if view.status == "done":
        return "done"
    if view.status == "failed":
        where = ", ".join(view.failed)
        return f"failed in {where}" if where else "failed"
    if view.status == "cancelled":
        return "cancelled"
    if view.questions:
        return f"waiting for an answer: {view.questions[0]}"
    counts = Counter(view.running)
    shown = [s for s, _ in counts.most_common(3)]
    if fanout is not None and fanout[0] not in shown:
        shown = [*shown[:2], fanout[0]]
    names = [_calls(s, counts[s], fanout) for s in shown]
    more = f" and {len(counts) - len(shown)} more" if len(counts) > len(shown) else ""
    if names:
        return f"running {', '.join(names)}{more}"
    if view.waiting:
        return f"{', '.join(dict.fromkeys(view.waiting))} waiting for an event"
    return "waiting" if view.status == "waiting" else "running"


def _calls(step: str, running: int, fanout: tuple[str, int, int] | None) -> str:
    """``score``, ``score (8 calls)``, and the bar when ``step`` is the fan-out's."""
    text = f"{step} ({running} calls)" if running > 1 else step
    if fanout is not None and fanout[0] == step:
        _, done, of = fanout
        text += f" {bar(done, of)} {done:,}/{of:,}"
    return text


def seconds(elapsed: float) -> str:
    """``0.8 s``, ``12.3 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if elapsed < 60:
        return f"{elapsed:.1f} s"
    whole = int(elapsed)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def bar(done: int, total: int) -> str:
    """``▕██████░░░░░░░░░░░░░░▏``: ``done`` of ``total`` in ``BAR_CELLS`` cells."""
    filled = BAR_CELLS * done // total if total else BAR_CELLS
    return "▕" + "█" * filled + "░" * (BAR_CELLS - filled) + "▏"


def _html(text: str) -> dict[str, str]:
    """The line's bundle: HTML only (see the module docstring), the theme's colours."""
    return {
        "text/html": '<div class="nw-status" style="font-family:var(--jp-code-font-family,'
        f'monospace);white-space:pre-wrap">{html.escape(text, quote=False)}</div>'
    }


def _publish(bundle: dict[str, str], display_id: str, *, update: bool) -> None:
    from IPython.display import display, update_display

    if update:
        update_display(bundle, raw=True, display_id=display_id)
    else:
        display(bundle, raw=True, display_id=display_id)


# -- whether the cell that started a run still runs --------------------------------------------


class _CellCount:
    """Cells started and ended in this kernel since the count was hooked into its shell (by the
    first run, from the cell it runs in)."""

    def __init__(self, events: Any) -> None:
        self.started = 1  # the cell whose run hooks this in
        self.ended = 0
        events.register("pre_run_cell", self._started)
        events.register("post_run_cell", self._ended)

    @property
    def executing(self) -> bool:
        return self.started > self.ended

    def _started(self, *_: Any) -> None:
        self.started += 1

    def _ended(self, *_: Any) -> None:
        self.ended += 1


_count: tuple[Any, _CellCount] | None = None  # (the shell, its count)


def _shell() -> Any:
    """IPython's shell, or None. The engine calls ``follow`` only in a notebook kernel (a
    ZMQ shell, with a frontend to show the line), so IPython is loaded already."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def _cells() -> _CellCount | None:
    """The cell count of the kernel's shell, hooked in on first use; None without a shell."""
    global _count
    shell = _shell()
    events = getattr(shell, "events", None)
    if events is None:
        return None
    if _count is None or _count[0] is not shell:
        _count = (shell, _CellCount(events))
    return _count[1]
