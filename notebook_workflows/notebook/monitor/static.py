"""The monitor's static picture: what a saved notebook shows where no widget runs.

When the run ends, the monitor's display is updated with this HTML next to the widget view (and
a deterministic ``text/plain`` line), so an executed notebook reads well on GitHub, in nbviewer,
in a notebook opened fresh in JupyterLab (untrusted: widgets are not restored, and SVG outputs
are not shown), and in nbval. Only inline styles and an ``<img>`` with a ``data:`` SVG: that is
what those sanitizers keep. Table cells are aligned left and top explicitly (JupyterLab's output
area would right-align them).
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..display import _table, _td, handler_html, plural
from ..graph import svg_img
from ..status import monitor_shown
from ..timeline import Span, timeline_html
from .kernel_io import in_notebook_kernel
from .panels import _MISSING, result_html, result_of

if TYPE_CHECKING:
    from ...handler import WorkflowHandler
    from ...runtime.view import RunView
    from .log import Row

logger = logging.getLogger("notebook_workflows")

STATIC_LOG_ROWS = 50  # log entries in the static picture saved with the notebook
STATIC_GRAPH_HEIGHT = 400


def _section(title: str, body: str) -> str:
    return (
        f'<div style="margin-top:8px"><b>{title}</b><div style="margin-top:2px">{body}</div></div>'
    )


def static_html(
    handler: WorkflowHandler,
    view: RunView,
    *,
    rows: Sequence[Row],
    total: int,
    outputs: Sequence[dict[str, Any]],
    spans: Sequence[Span],
    graph_svg: str | None = None,
) -> str:
    """The run as static HTML: the handler's card, the result, the graph (``graph_svg``, as
    the monitor last drew it: the picture never waits for Graphviz), the timeline, the last log
    entries and what the steps printed."""
    e = html.escape
    parts = [
        '<div class="nw-run-monitor" style="text-align:left;max-width:1100px">',
        handler_html(handler, view),
    ]
    result = result_of(view)
    if result is not _MISSING:
        parts.append(result_html(result, css=False))
    if graph_svg:
        alt = f"graph of run {view.run_id} of {view.workflow}"
        parts.append(_section("graph", svg_img(graph_svg, alt=alt, max_height=STATIC_GRAPH_HEIGHT)))
    strip = timeline_html(spans, view.ended_at or view.started_at + view.elapsed)
    if strip:
        parts.append(_section("timeline", strip))
    shown = list(rows)[-STATIC_LOG_ROWS:]
    if shown:
        body = "".join(
            f'<tr><td style="text-align:left;vertical-align:top;color:#718096;'
            f'padding:1px 10px 1px 0;white-space:nowrap">{r.time}</td>'
            f"{_td(e(r.step))}{_td(e(r.kind))}{_td(f'<code>{e(r.summary)}</code>')}</tr>"
            for r in shown
        )
        title = f"events (the last {len(shown)} of {total:,})" if total > len(shown) else "events"
        parts.append(_table(title, ("time", "step", "event", "summary"), body))
    text = "".join(o["text"] for o in outputs if o["output_type"] == "stream")
    if text:
        parts.append(
            '<div style="margin-top:6px"><b>output of steps</b>'
            f'<pre style="max-height:20em;overflow:auto;text-align:left">{e(text[-5000:])}</pre>'
            "</div>"
        )
    parts.append("</div>")
    return "".join(parts)


class SavedPicture:
    """The monitor's display: its bundle, and the final update a saved notebook keeps (mixed
    into ``RunMonitor``)."""

    handler: WorkflowHandler
    widget: Any
    _display_id: str
    _displayed: bool
    _final: bool
    _events: Any
    _started: float
    _timeline: Any
    if TYPE_CHECKING:  # RunMonitor's read-only property

        @property
        def _outputs(self) -> list[dict[str, Any]]: ...

    _on_loop: Any
    _graph: Any

    def __repr__(self) -> str:
        view = self.handler.view()
        n = view.steps_done
        return (
            f"RunMonitor({view.workflow}, run {view.run_id!r}, {view.status}, "
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
        monitor_shown(self.handler)  # the monitor shows the run: its cell needs no status line

    def _publish_final(self) -> None:
        """Update the displayed monitor with its final bundle, so a saved notebook keeps the
        finished run (JupyterLab and nbclient update each output with this display id).

        The update goes out under the kernel's current request, the cell that awaits the run,
        which is what nbclient listens to. A run that ends between cells (displayed in one,
        awaited in a later one, or not awaited at all) has no such cell, so the update is sent
        once more when the next cell starts. The graph of the finished run is drawn off the
        loop, after this first update: when the cell has finished (``post_run_cell``, still
        under its request) or the next one starts, the drawing is waited for and the update
        sent again, with it. That wait never delays the run or the code awaiting it."""
        if not in_notebook_kernel():
            return
        self._update_display()
        from IPython import get_ipython

        events = getattr(get_ipython(), "events", None)
        if events is None:
            return

        def again(*_: Any) -> None:
            for name in ("post_run_cell", "pre_run_cell"):
                with contextlib.suppress(ValueError):
                    events.unregister(name, again)
            self._on_loop(self._graph.settle)
            self._update_display()

        events.register("post_run_cell", again)
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
        """The run as static HTML (see ``static``); the graph once the run has ended, as the
        monitor last drew it (until then the widget shows it)."""
        return static_html(
            self.handler,
            self.handler.view(),
            rows=self._events.rows(self._started),
            total=self._events.total,
            outputs=self._outputs,
            spans=self._timeline.spans,
            graph_svg=self._graph.svg if self._final else None,
        )
