"""The monitor's graph, drawn off the run's loop.

Graphviz takes tens of milliseconds, longer than many whole runs. The DOT text is built on the
loop (from the refresh's ``RunView``) and drawn on one renderer thread, the newest text only, at
most every ``GRAPH_INTERVAL`` and not before the first refresh interval has passed (a short run
is drawn once, when it has ended); the SVG comes back to the loop. A tall graph is scaled down
towards ``GRAPH_HEIGHT``, and a wide one to the width it gets, but never below
``graph.MIN_SCALE`` (its smallest text stays at 10 px or more): beyond that its box scrolls.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..graph import WorkflowGraph, _svg_element, readable_size, svg_size

GRAPH_HEIGHT = 600  # pixels: a taller graph is scaled down towards this (to 85% at most)
GRAPH_INTERVAL = 0.5  # seconds between graph drawings at the least (Graphviz takes ~25 ms)

_renderer: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _render_pool() -> ThreadPoolExecutor:
    global _renderer
    with _lock:
        if _renderer is None:
            _renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nw-monitor-graph")
        return _renderer


def graph_html(graph: WorkflowGraph) -> tuple[str, str | None]:
    """The graph as an inline ``<svg>``, scaled down to ``GRAPH_HEIGHT`` when taller, and the
    SVG as drawn; the DOT text and an install hint (and ``None``) when Graphviz cannot draw it
    (never a traceback)."""
    try:
        drawn = svg = _svg_element(graph.to_svg())
    except Exception as exc:
        fallback = graph._fallback_bundle(exc)["text/html"]
        return f'<div class="nwm-fallback">{fallback}</div>', None
    size = svg_size(svg)
    if size is not None:
        width, height, smallest = readable_size(size, GRAPH_HEIGHT)
        end = svg.index('pt"', svg.index('height="')) + 3
        svg = (
            f'<svg width="{width:.0f}px" height="{height:.0f}px" '
            f'style="min-width:{smallest:.0f}px"' + svg[end:]
        )
    return f'<div class="nwm-svg">{svg}</div>', drawn


class GraphPanel:
    """Hands the newest graph to the renderer thread and shows what comes back.

    ``post(fn, *args)`` runs ``fn`` on the run's loop; ``call_later(delay, fn)`` schedules on it
    (or returns None once it has stopped); ``show(html)`` sets the widget, on the loop. ``svg``
    is the last SVG drawn (for the saved picture), ``None`` until one is.
    """

    def __init__(
        self,
        post: Callable[..., None],
        call_later: Callable[[float, Callable[[], None]], Any],
        show: Callable[[str], None],
        first_wait: float,
    ) -> None:
        self._post = post
        self._call_later = call_later
        self._show = show
        self.source = ""  # the DOT text shown or being drawn
        self.busy = False
        self.next: WorkflowGraph | None = None
        # time.monotonic() before which no drawing begins
        self._not_before = time.monotonic() + first_wait
        self._timer: Any = None
        self.final = False  # the run's last picture: draw at once
        self.svg: str | None = None
        self._pending: Future[tuple[str, str | None]] | None = None  # the drawing in flight

    def idle(self) -> bool:
        """Nothing being drawn and nothing waiting to be."""
        return not self.busy and self.next is None

    def request(self, graph: WorkflowGraph) -> None:
        if graph.source == self.source:
            return
        self.source = graph.source
        self.next = graph  # the newest wins: older ones not yet drawn are skipped
        self._draw()

    def _draw(self) -> None:
        graph = self.next
        if graph is None or self.busy:
            return
        wait = self._not_before - time.monotonic()
        if wait > 0 and not self.final:
            if self._timer is None:
                self._timer = self._call_later(wait, self._timer_fired)
            if self._timer is not None:
                return
        self.next = None
        self.busy = True
        self._not_before = time.monotonic() + GRAPH_INTERVAL
        try:
            future = _render_pool().submit(graph_html, graph)
        except RuntimeError:  # the interpreter is shutting down
            self.busy = False
            return
        self._pending = future
        future.add_done_callback(lambda done: self._post(self._drawn, done))

    def _timer_fired(self) -> None:
        self._timer = None
        self._draw()

    def _drawn(self, future: Future[tuple[str, str | None]]) -> None:
        if future is not self._pending:  # already shown by ``settle``
            return
        self._pending = None
        self.busy = False
        try:
            html, self.svg = future.result()
        except Exception as exc:  # never stay busy for good: say so and carry on
            html = f'<div class="nwm-dim">the graph could not be drawn: {exc!r}</div>'
        self._show(html)
        self._draw()

    def settle(self, timeout: float = 5.0) -> None:
        """On the loop thread: wait for the drawing in flight and show it now. The saved
        picture needs the run's last graph at the end of the cell, and the kernel's loop may
        not run again before the next one, so the result cannot wait for its turn there."""
        future = self._pending
        if future is None:
            return
        with contextlib.suppress(Exception):
            future.result(timeout)
        if future.done():
            self._drawn(future)
