"""RunBrowser: the runs a checkpoint store keeps, to look into, compare over time, and act on.

``RunBrowser(store)`` lists the store's runs (``store.runs()``) with filters (a text matched
against run id, parent run and workflow; a status; a workflow); choosing one shows its graph
with the step counts and times recorded in its snapshots, a slider over its snapshots
(``store.history``) that moves the graph, the store table (keys that changed since the previous
snapshot marked) and the timeline with it, and buttons to delete the run, resume it, or fork it
at the chosen snapshot; under them a form changes one store value at that snapshot and forks
the run from there (``fork_form``: ``workflow.fork(run_id, at=..., store_edits=...)``). A fork's
first snapshot shows the edits it started with. Resuming and forking call the workflow's
``resume``/``fork`` only when a workflow instance was given (``RunBrowser(store,
workflow=MyFlow())``), and then show the new run's monitor; without one the browser shows the
line of code to run, since it cannot know the class (snapshots name it, and loading never
imports code from the data).

Everything is read from the store through its public methods; nothing is written except by
the delete button (asked twice). The browser works in the kernel's own thread: it has no run
loop of its own, and a store read is fast (one snapshot rebuilt per slider move).
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .display import duration, plural, short_text
from .fork_form import ForkForm, edits_html, post_to
from .graph import WorkflowGraph
from .graph_text import dark_theme_css
from .monitor.graph_panel import graph_html
from .monitor.panels import StoreTable
from .monitor.style import PALETTE
from .timeline import spans_from_snapshots, timeline_html

if TYPE_CHECKING:
    from ..workflow import Workflow

ALL = "(all)"

_STYLE = """
.nwb { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  color: var(--jp-ui-font-color1, #1f2328); border: 1px solid var(--jp-border-color2, #d0d7de);
  border-radius: 8px; padding: 8px 12px 10px; max-width: 1100px; box-sizing: border-box;
  text-align: left; gap: 6px; }
.nwb .nwb-style { display: none !important; }
.nwb > *, .nwb .widget-vbox > * { max-width: 100%; box-sizing: border-box; }
.nwb .nwb-filters { flex-wrap: wrap; gap: 6px; align-items: center; overflow: visible; }
.nwb .nwb-filters > * { width: auto; margin: 0; max-width: 100%; }
.nwb .nwb-filters .widget-text { flex: 1 1 14em; }
.nwb .nwb-filters .widget-dropdown { flex: 0 1 auto; min-width: 0; }
.nwb .nwb-filters .widget-dropdown > select { min-width: 0; }
.nwb .nwb-runs { width: 100%; margin: 0; }
.nwb .nwb-runs select { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  box-sizing: border-box; width: 100%; }
.nwb .nwb-detail { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start;
  overflow: visible; }
.nwb .nwb-graph { flex: 0 0 auto; max-width: 100%; }
.nwb .nwb-store { flex: 1 1 320px; min-width: 0; }
.nwb .nwb-slider { width: 100%; margin: 0; }
.nwb .nwb-slider .widget-readout { display: none; }
.nwb .nwb-slider .slider-container { margin-right: 10px; }
.nwb .nwb-actions { flex-wrap: wrap; gap: 6px; overflow: visible; }
.nwb .nwb-actions > * { width: auto; margin: 0; }
.nwb .nwm-svg { overflow: auto; max-height: 440px; max-width: 100%; }
.nwb .nwm-svg svg { display: block; max-width: 100%; height: auto; }
.nwb .widget-html, .nwb .widget-html-content { line-height: 1.45; margin: 0; height: auto; }
.nwb code { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  background: var(--nw-code); padding: 0 4px; border-radius: 3px; }
.nwb .nwm-title { font-size: 11px; text-transform: uppercase; letter-spacing: .05em;
  color: var(--nw-dim); margin: 2px 0 3px; font-weight: 600; }
.nwb .nwm-dim { color: var(--nw-dim); }
.nwb .nwm-table { overflow: auto; max-height: 360px; }
.nwb table { border-collapse: collapse; width: 100%; font-size: 12px; }
.nwb th { text-align: left; font-weight: 600; color: var(--nw-dim);
  border-bottom: 1px solid var(--jp-border-color2, #d0d7de); padding: 2px 6px; }
.nwb td { text-align: left; vertical-align: top; padding: 2px 6px; white-space: nowrap;
  border-bottom: 1px solid var(--jp-border-color3, #eaeef2); }
.nwb td.value { white-space: normal; min-width: 14ch; }
.nwb td.mark { color: var(--nw-amber); width: 1em; padding-right: 0; }
.nwb tr.changed td { background: rgba(255, 196, 0, .14); }
.nwb .nwb-edits { color: var(--nw-amber); margin-top: 2px; }
"""


def _stylesheet() -> str:
    """The browser's rules, the palette it shares with the monitor, and the graph's dark
    theme."""
    return f"<style>{PALETTE}{_STYLE}{dark_theme_css('.nwb .nwm-svg')}</style>"


def _short_name(workflow: str) -> str:
    return workflow.rpartition(":")[2] or workflow


def _when(timestamp: float, short: bool = False) -> str:
    import time

    when = time.localtime(timestamp)
    this_year = short and when.tm_year == time.localtime().tm_year
    return time.strftime("%m-%d %H:%M" if this_year else "%Y-%m-%d %H:%M", when)


class RunBrowser:
    """The runs kept in a checkpoint store; display it in a notebook.

    ``store`` is any checkpoint store (``SQLiteStore()`` by default); ``workflow`` an instance
    of the workflow the runs belong to, to resume and fork them from the browser. Parts, for
    tests and custom layouts: ``widget``, ``search``, ``status``, ``workflow_filter``,
    ``runs`` (the list), ``info``, ``graph``, ``slider``, ``snapshot``, ``store_view``,
    ``timeline``, ``delete_button``, ``resume_button``, ``fork_button``, ``message``,
    ``fork_form`` (edit a store value and fork).
    """

    def __init__(self, store: Any = None, workflow: Workflow | None = None) -> None:
        import ipywidgets as W

        if store is None:
            from ..checkpoint import SQLiteStore

            store = SQLiteStore()
        self.store = store
        self.workflow = workflow
        self.handler: Any = None  # the run last resumed or forked from here
        self._W = W
        self._all: list[Any] = []  # every run in the store, newest first
        self._infos: list[Any] = []  # the runs the filters let through
        self._history: list[Any] = []
        self._table = StoreTable()
        self._confirm_delete = False

        self.search = W.Text(
            placeholder="run id, its parent or workflow contains…",
            continuous_update=False,
        )
        self.status = W.Dropdown(options=[ALL], value=ALL, description="status")
        self.workflow_filter = W.Dropdown(options=[ALL], value=ALL, description="workflow")
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        filters = W.HBox(
            [self.search, self.status, self.workflow_filter, self.refresh_button],
            _dom_classes=("nwb-filters",),
        )
        self.runs = W.Select(options=[], rows=8, _dom_classes=("nwb-runs",))
        self.info = W.HTML()
        self.graph = W.HTML(_dom_classes=("nwb-graph",))
        self.store_view = W.HTML(_dom_classes=("nwb-store",))
        self.slider = W.IntSlider(
            min=0, max=0, value=0, description="snapshot", _dom_classes=("nwb-slider",)
        )
        self.snapshot = W.HTML()
        self.timeline = W.HTML()
        self.delete_button = W.Button(description="Delete run", icon="trash")
        self.resume_button = W.Button(description="Resume", icon="play")
        self.fork_button = W.Button(description="Fork at this snapshot", icon="code-branch")
        self.message = W.HTML()
        self.output = W.Output()
        try:  # the kernel's loop: where a fork started from the form runs
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self.fork_form = ForkForm(store, workflow=workflow, post=post_to(loop))
        actions = W.HBox(
            [self.resume_button, self.fork_button, self.delete_button],
            _dom_classes=("nwb-actions",),
        )
        self.detail = W.VBox(
            [
                self.info,
                self.slider,
                self.snapshot,
                W.HBox([self.graph, self.store_view], _dom_classes=("nwb-detail",)),
                W.HTML('<div class="nwm-title">timeline (up to this snapshot)</div>'),
                self.timeline,
                actions,
                self.message,
                self.output,
                W.HTML('<div class="nwm-title">edit a store value at this snapshot and fork</div>'),
                self.fork_form.widget,
            ]
        )
        self.widget = W.VBox(
            [W.HTML(_stylesheet(), _dom_classes=("nwb-style",)), filters, self.runs, self.detail],
            _dom_classes=("nwb",),
        )
        for control in (self.search, self.status, self.workflow_filter):
            control.observe(lambda _: self.reload(), names="value")
        self.refresh_button.on_click(lambda _: self.reload())
        self.runs.observe(lambda change: self.choose(change["new"]), names="value")
        self.slider.observe(lambda change: self.show_snapshot(change["new"]), names="value")
        self.delete_button.on_click(lambda _: self.delete())
        self.resume_button.on_click(lambda _: self.resume())
        self.fork_button.on_click(lambda _: self.resume(fork=True))
        self.reload()

    # -- the list ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the store's runs again and apply the filters."""
        infos = sorted(self.store.runs(), key=lambda i: i.updated_at, reverse=True)
        self._all = infos
        statuses = [ALL, *sorted({i.status for i in infos})]
        workflows = [ALL, *sorted({_short_name(i.workflow) for i in infos})]
        with self.status.hold_trait_notifications():
            self.status.options = statuses
            if self.status.value not in statuses:
                self.status.value = ALL
        with self.workflow_filter.hold_trait_notifications():
            self.workflow_filter.options = workflows
            if self.workflow_filter.value not in workflows:
                self.workflow_filter.value = ALL
        text = self.search.value.strip().lower()
        shown = [
            i
            for i in infos
            if (self.status.value == ALL or i.status == self.status.value)
            and (
                self.workflow_filter.value == ALL
                or _short_name(i.workflow) == self.workflow_filter.value
            )
            and (
                not text
                or text in i.run_id.lower()
                or text in (i.parent or "").lower()  # a fork comes with the run it forked
                or text in i.workflow.lower()
            )
        ]
        self._infos = shown
        chosen = self.runs.value
        widths = (
            min(max((len(i.run_id) for i in shown), default=0), 40),
            max((len(i.status) for i in shown), default=0),
        )
        names = len({i.workflow for i in shown}) > 1
        options = [(self._label(i, widths, names), i.run_id) for i in shown]
        self.runs.options = options
        ids = [i.run_id for i in shown]
        if chosen in ids:
            self.runs.value = chosen
        elif ids:
            self.runs.value = ids[0]
        else:
            self.choose(None)

    @staticmethod
    def _label(info: Any, widths: tuple[int, int], workflow: bool) -> str:
        """One line of the list, columns as wide as the list needs and what matters most
        first (a narrow list cuts its end): run id, status, steps, when (the year only when it
        is not this one), the run it forked from, and the workflow when the list holds runs of
        several."""
        line = (
            f"{info.run_id:<{widths[0]}}  {info.status:<{widths[1]}}  {info.steps:>3} "
            f"{plural(info.steps, 'step'):<5}  {_when(info.updated_at, short=True)}"
        )
        if info.parent:
            line += f"  ← {info.parent} #{info.parent_seq}"
        if workflow:
            line += f"  {_short_name(info.workflow)}"
        return line

    # -- one run ----------------------------------------------------------------------------

    def choose(self, run_id: str | None) -> None:
        """Show run ``run_id`` (``None``: nothing chosen)."""
        self._confirm_delete = False
        self.delete_button.description = "Delete run"
        self.message.value = ""
        info = next((i for i in self._infos if i.run_id == run_id), None)
        self.detail.layout.display = "none" if info is None else ""
        if info is None:
            self._history = []
            return
        self._history = list(self.store.history(info.run_id))
        e = html.escape
        parent = (
            f" · forked from <code>{e(info.parent)}</code> at snapshot {info.parent_seq}"
            if info.parent
            else ""
        )
        self.info.value = (
            f"<b>{e(_short_name(info.workflow))}</b> · run <code>{e(info.run_id)}</code> · "
            f"<b>{e(info.status)}</b> · {info.steps} {plural(info.steps, 'step')} done · "
            f"{len(self._history)} {plural(len(self._history), 'snapshot')}{parent}"
        )
        self._table = StoreTable()
        last = max(len(self._history) - 1, 0)
        with self.slider.hold_trait_notifications():
            self.slider.max = last
            self.slider.value = last
        self.show_snapshot(last)
        self.resume_button.disabled = info.status == "done"

    def show_snapshot(self, index: int) -> None:
        """Move to the run's snapshot number ``index`` in its history."""
        if not self._history:
            return
        index = max(0, min(index, len(self._history) - 1))
        snap = self._history[index]
        e = html.escape
        self.snapshot.value = f'<span class="nwm-dim">{e(snap.describe())}</span>'
        edits = snap.edits
        if edits:
            self.snapshot.value += f'<div class="nwb-edits">{edits_html(edits)}</div>'
        try:
            context = snap.context
        except Exception as exc:  # a damaged store: say so, keep the browser usable
            self.graph.value = (
                f'<div class="nwm-dim">cannot read this snapshot: {e(str(exc))}</div>'
            )
            return
        # inline, so the dark theme repaints it; without Graphviz, the DOT text and the hint
        self.graph.value = graph_html(WorkflowGraph.of_snapshot(snap))[0]
        self.store_view.value = self._table.update(context.get("store") or {}) or self._table.html()
        info = next((i for i in self._infos if i.run_id == snap.run_id), None)
        name = _short_name(info.workflow) if info is not None else ""
        self.fork_form.show(snap.run_id, snap.seq, context.get("store") or {}, name)
        spans = spans_from_snapshots(self._history[: index + 1])
        self.timeline.value = timeline_html(spans, snap.created_at) or (
            '<div class="nwm-dim">no step had completed yet</div>'
        )

    # -- actions ----------------------------------------------------------------------------

    def _chosen(self) -> tuple[str, int] | None:
        run_id = self.runs.value
        if not run_id or not self._history:
            return None
        return run_id, self._history[self.slider.value].seq

    def delete(self) -> None:
        """Delete the chosen run from the store; the first click asks, the second deletes."""
        chosen = self._chosen()
        if chosen is None:
            return
        run_id, _ = chosen
        if not self._confirm_delete:
            self._confirm_delete = True
            self.delete_button.description = f"Really delete {run_id}?"
            self.message.value = (
                '<span class="nwm-dim">Click again to delete this run and all its snapshots; '
                "choose another run to keep it.</span>"
            )
            return
        self.store.delete(run_id)
        self.reload()
        self.message.value = f"deleted run <code>{html.escape(run_id)}</code>"

    def resume(self, fork: bool = False) -> None:
        """Resume the chosen run (or fork it at the chosen snapshot) when a workflow was given;
        otherwise show the line of code that does it."""
        chosen = self._chosen()
        if chosen is None:
            return
        run_id, seq = chosen
        at = f", at={seq}" if fork else ""
        info = next(i for i in self._infos if i.run_id == run_id)
        e = html.escape
        if self.workflow is None:
            code = f"handler = {_short_name(info.workflow)}().resume({run_id!r}, store=store{at})"
            self.message.value = (
                "Run this in a cell (the browser was given no workflow instance; "
                "<code>RunBrowser(store, workflow=...)</code> does it here):<br>"
                f"<code>{e(code)}</code><br><code>await handler</code>"
            )
            return
        try:
            self.handler = self.workflow.resume(run_id, store=self.store, at=seq if fork else None)
        except Exception as exc:
            self.message.value = (
                f'<span style="color:#c53030">{e(short_text(str(exc), 400))}</span>'
            )
            return
        what = f"forked snapshot {seq} of" if fork else "resumed"
        self.message.value = (
            f"{what} <code>{e(run_id)}</code> as run <code>{e(self.handler.run_id)}</code>: "
            "<code>browser.handler</code> is its handler"
        )
        with self.output:
            from IPython.display import display

            display(self.handler.monitor())

    # -- display ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        n = len(self._infos)
        return f"RunBrowser({type(self.store).__name__}, {n} {plural(n, 'run')} shown)"

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        rows = "".join(
            "<tr>"
            + "".join(
                f'<td style="text-align:left;padding-right:12px">{html.escape(str(c))}</td>'
                for c in (
                    i.run_id,
                    _short_name(i.workflow),
                    i.status,
                    i.steps,
                    _when(i.updated_at),
                    duration(max(0.0, i.updated_at - (i.created_at or i.updated_at))),
                )
            )
            + "</tr>"
            for i in self._infos
        )
        head = "".join(
            f'<th style="text-align:left;padding-right:12px">{h}</th>'
            for h in ("run", "workflow", "status", "steps", "updated", "lasted")
        )
        return {
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.widget.model_id,
            },
            "text/plain": repr(self),
            "text/html": f'<table style="text-align:left"><tr>{head}</tr>{rows}</table>',
        }

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)


__all__ = ["RunBrowser"]
