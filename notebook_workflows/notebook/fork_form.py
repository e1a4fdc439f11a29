"""ForkForm: change a store value at a snapshot of a checkpointed run, and fork the run there.

The inline form of ``workflow.fork(run_id, at=n, store_edits={key: value}, store=store)`` (what
LangGraph calls ``update_state``, done in place): a key, picked from the snapshot's store keys or
typed (a dotted path reaches into a nested value), the new value as JSON, and a "Fork with this
edit" button. Beside the key, the form shows the key's value at that snapshot. The edit is
checked as ``ctx.store.set`` checks it: a refusal is shown in the form and nothing is written.
A fork that starts shows its new run id, the line that continues it later (after a kernel
restart too) and its own monitor, where the new value is seen at work. Without a workflow
instance (a run browser given only a store) the form shows the line of code that does the fork
instead: loading a snapshot never imports the class it names.

Both text boxes send their value once (``continuous_update=False``), on Enter or when they lose
focus, which clicking the button does first. The kernel never sets a trait of a box a person
may be typing into: a state message from the kernel makes the box show its model's value again,
which would wipe what was typed since (so the current value is a label of its own, not the value
box's placeholder). Widget callbacks may arrive on another thread than the kernel's loop
(JupyterLab's comm subshells): ``post`` hands every change to the loop the form belongs to,
where the widgets are set and ``fork`` is called.

Used by the run monitor (``monitor.fork_section``: a snapshot picker over its own run's history)
and by the run browser (its slider chooses the snapshot).
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..checkpoint.resume import resume_call
from ..serialization import decode
from .display import short, short_text

PICK_HINT = "store key"
PICK_TIP = "a key of the store at this snapshot, or a new one; a.b reaches into a nested value"
EXAMPLES = '3, "text", [1, 2], {"a": 1}'
VALUE_HINT = f"new value as JSON: {EXAMPLES}"

_STYLE = """<style>
.nwf { gap: 4px; margin: 0; width: 100%; }
.nwf > .nwf-style { display: none !important; }
.nwf .nwf-row { flex-wrap: wrap; gap: 6px; align-items: center; width: 100%; padding: 2px;
  box-sizing: border-box; }  /* room for the focus ring of the last button */
.nwf .nwf-row > * { margin: 0; }
.nwf .nwf-at { flex: 0 1 24em; width: auto; }
.nwf .nwf-at select { font-size: 12px; }
.nwf .nwf-key { flex: 0 1 16em; width: auto; }
.nwf .nwf-value { flex: 1 1 16em; width: auto; }
.nwf .nwf-now { flex: 0 1 auto; width: auto; max-width: 22em; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.nwf .nwf-row .jupyter-button { flex: none; width: auto; padding: 0 12px; }
.nwf .nwf-message .widget-html-content { line-height: 1.5; }
.nwf code { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  background: var(--jp-layout-color2, #f6f8fa); padding: 0 4px; border-radius: 3px; }
.nwf .nwf-error { color: #c53030; white-space: pre-wrap; }
.nwf .nwf-forks { margin-top: 6px; width: 100%; }
</style>"""


def post_to(loop: asyncio.AbstractEventLoop | None) -> Callable[[Callable[[], Any]], None]:
    """A ``post(fn)`` that runs ``fn()`` on ``loop`` (at once when called there, or when the
    loop has stopped for good: then nothing else touches the widgets)."""

    def post(fn: Callable[[], Any]) -> None:
        if loop is not None and loop.is_running() and not loop.is_closed():
            try:
                here = asyncio.get_running_loop()
            except RuntimeError:
                here = None
            if here is not loop:
                try:
                    loop.call_soon_threadsafe(fn)
                    return
                except RuntimeError:  # closed in between
                    pass
        fn()

    return post


def edits_html(edits: list[dict[str, Any]]) -> str:
    """A fork's recorded store edits (``Snapshot.edits``) as one line of HTML."""
    e = html.escape
    parts = []
    for edit in edits:
        was = f" (was <code>{e(_shown(edit['was']))}</code>)" if "was" in edit else " (new key)"
        parts.append(
            f"<code>{e(edit['key'])}</code> = <code>{e(_shown(edit.get('value')))}</code>{was}"
        )
    return "✎ store edited before this fork ran: " + "; ".join(parts) if parts else ""


def _shown(encoded: Any, path: str = "value") -> str:
    """A stored (tagged JSON) value as a short repr; what cannot be read says so."""
    try:
        return short(decode(encoded, path=path), 60)
    except Exception as exc:  # a display never fails on a damaged value
        return f"<unreadable: {exc}>"


class ForkForm:
    """Edit one store value at a snapshot and fork the run there; display ``widget``.

    ``store`` is the run's checkpoint store, ``workflow`` an instance of its workflow (``None``:
    show the code line instead of forking), ``post`` how widget callbacks reach the loop the
    form lives on, ``picker`` whether the form has its own snapshot dropdown (``load``) or is
    told the snapshot (``show``). Code lines name the checkpoint store ``store``. Parts, for
    tests: ``at``, ``now`` (the key's current value)
    (the picker), ``key``, ``value``, ``button``, ``message``, ``forks`` (the fork's monitor);
    ``handler`` is the last fork started here.
    """

    def __init__(
        self,
        store: Any,
        *,
        workflow: Any = None,
        workflow_name: str = "",
        post: Callable[[Callable[[], Any]], None] | None = None,
        picker: bool = False,
    ) -> None:
        import ipywidgets as W

        self.store = store
        self.workflow = workflow
        self.workflow_name = workflow_name or (
            type(workflow).__name__ if workflow is not None else "Workflow"
        )
        self._post = post or post_to(None)
        self.run_id: str | None = None
        self.seq: int | None = None
        self.handler: Any = None
        self._loading = False
        self._values: Mapping[str, Any] = {}  # the store at the chosen snapshot, tagged JSON
        labels = {"description_width": "initial"}  # a label as wide as its word
        self.at = (
            W.Dropdown(options=[], description="at", style=labels, _dom_classes=("nwf-at",))
            if picker
            else None
        )
        self.key = W.Combobox(
            description="set",
            style=labels,
            placeholder=PICK_HINT,
            tooltip=PICK_TIP,
            options=[],
            ensure_option=False,
            continuous_update=False,
            _dom_classes=("nwf-key",),
        )
        self.value = W.Text(
            description="to",
            style=labels,
            placeholder=VALUE_HINT,
            continuous_update=False,
            _dom_classes=("nwf-value",),
        )
        self.button = W.Button(
            description="Fork with this edit",
            icon="code-branch",
            tooltip="a new run from this snapshot, with the store value changed",
            disabled=True,  # until a snapshot is chosen
            _dom_classes=("nwf-fork",),
        )
        self.now = W.HTML(_dom_classes=("nwf-now",))  # the key's value at the snapshot
        self.message = W.HTML(_dom_classes=("nwf-message",))
        self.forks = W.VBox([], _dom_classes=("nwf-forks",))
        row = [self.key, self.now, self.value, self.button]
        if self.at is not None:
            row.insert(0, self.at)
            self.at.observe(self._picked, names="value")
        self.widget = W.VBox(
            [
                W.HTML(_STYLE, _dom_classes=("nwf-style",)),
                W.HBox(row, _dom_classes=("nwf-row",)),
                self.message,
                self.forks,
            ],
            _dom_classes=("nwf",),
        )
        self.key.observe(lambda _: self._post(self._hint), names="value")
        self.button.on_click(lambda _: self._post(self.submit))

    # -- the snapshot ---------------------------------------------------------------------------

    def load(self, run_id: str) -> None:
        """Fill the snapshot picker with run ``run_id``'s history; choose the last snapshot
        before the run's end (a fork from its end would run nothing)."""
        assert self.at is not None, "load() is for a form with its own snapshot picker"
        history = list(self.store.history(run_id))
        self.run_id = run_id
        open_ = [s.seq for s in history if s.status != "done"]
        # "#3 after step 'load', 2 steps done": the time of day left out, to stay short
        options = [(s.describe().rsplit(", ", 1)[0], s.seq) for s in history if s.status != "done"]
        choice = open_[-1] if open_ else None
        self._loading = True  # one snapshot read below, not one per option change
        try:
            self.at.options = options
            self.at.value = choice
        finally:
            self._loading = False
        self._choose(choice)

    def _picked(self, change: Any) -> None:
        if not self._loading:
            self._post(lambda: self._choose(change["new"]))

    def _choose(self, seq: int | None) -> None:
        if seq is None or self.run_id is None:
            self.show(self.run_id, None, {})
            return
        self.show(self.run_id, seq, self.store.snapshot(self.run_id, seq).context.get("store"))

    def show(
        self,
        run_id: str | None,
        seq: int | None,
        store_values: Mapping[str, Any] | None,
        workflow_name: str = "",
    ) -> None:
        """The form now edits snapshot ``seq`` of ``run_id``, whose store (tagged JSON) is
        ``store_values``."""
        self.run_id, self.seq = run_id, seq
        if workflow_name and self.workflow is None:
            self.workflow_name = workflow_name
        self._values = store_values or {}
        keys = sorted(self._values)
        if list(self.key.options) != keys:
            self.key.options = keys
        self.button.disabled = run_id is None or seq is None
        self._hint()

    def _hint(self) -> None:
        key = self.key.value.strip()
        hint = ""
        if key in self._values:
            hint = f"now <code>{html.escape(short_text(_shown(self._values[key], key), 40))}</code>"
        elif key:
            hint = "a new key"
        hint = f'<span class="nwm-dim">{hint}</span>' if hint else ""
        if self.now.value != hint:
            self.now.value = hint

    # -- the fork -------------------------------------------------------------------------------

    def submit(self) -> None:
        """Fork with the edit in the boxes (the button's action), or say what is missing."""
        e = html.escape
        key, text = self.key.value.strip(), self.value.value.strip()
        run_id, seq = self.run_id, self.seq
        if run_id is None or seq is None:
            return self._say("choose a snapshot to fork first")
        if not key:
            return self._say("pick or type the store key to change")
        if not text:
            return self._say(f"type the new value for {key!r}, as JSON ({EXAMPLES})")
        try:
            value = json.loads(text)
        except ValueError as exc:
            return self._say(
                f'the value is not JSON ({exc}); text goes in double quotes: "like this"',
                error=True,
            )
        edits = {key: value}
        name = self.workflow_name
        if self.workflow is None:
            code = (
                f"handler = {name}().fork({run_id!r}, at={seq}, store_edits={edits!r}, store=store)"
            )
            self.message.value = (
                "Run this in a cell (this browser has no workflow instance; "
                "<code>RunBrowser(store, workflow=...)</code> forks from here):<br>"
                f"<code>{e(code)}</code><br><code>await handler</code>"
            )
            return None
        try:
            handler = self.workflow.fork(run_id, at=seq, store_edits=edits, store=self.store)
        except Exception as exc:  # a refused edit: nothing was written
            notes = "".join(f"\n{note}" for note in getattr(exc, "__notes__", ()))
            return self._say(f"{type(exc).__name__}: {short_text(str(exc), 400)}{notes}", True)
        self.handler = handler
        handler.add_done_callback(lambda h: h.exception())  # its monitor shows how it ended
        again = "await " + resume_call(self.workflow, handler.run_id, self.store)
        self.message.value = (
            f"Forked snapshot {seq} of <code>{e(run_id)}</code> with <code>{e(key)} = "
            f"{e(text)}</code> as run <b><code>{e(handler.run_id)}</code></b>; it runs below."
            f"<br>To continue it later, after a kernel restart too: <code>{e(again)}</code>"
        )
        self.forks.children = (handler.monitor().widget,)
        return None

    def _say(self, text: str, error: bool = False) -> None:
        cls = "nwf-error" if error else "nwm-dim"
        self.message.value = f'<span class="{cls}">{html.escape(text)}</span>'


__all__ = ["ForkForm", "edits_html", "post_to"]
