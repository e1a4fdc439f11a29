"""The monitor's panels as HTML, each a function of one ``RunView``: header, store, result.

No widget and no thread here: the monitor calls these on the run's loop at each refresh and sets
the strings it gets on its widgets. The header shows the status, progress, a failed step with
its traceback, the cancel reason, the result and how to resume a checkpointed run. A long result
is cut at its end and opens (``<details>``) to the whole value. The store table marks the keys
that changed since the last refresh.
"""

from __future__ import annotations

import html
import reprlib
from typing import TYPE_CHECKING, Any

from ...checkpoint.resume import resume_call
from ...serialization import decode
from ..display import STATUS_COLOURS, duration, plural, short, short_text, store_rows

if TYPE_CHECKING:
    from ...runtime.view import RunView

STORE_ROWS = 60  # store keys shown
RESULT_CHARS = 120  # a result longer than this opens to its whole text
_MISSING: Any = object()

_whole = reprlib.Repr()  # the result in full: generous, still bounded in time and size
_whole.maxstring = _whole.maxother = 20_000
_whole.maxlist = _whole.maxtuple = _whole.maxset = _whole.maxfrozenset = _whole.maxdict = 200
_whole.maxlevel = 6


def result_of(view: RunView) -> Any:
    """The run's result when it is done, else ``_MISSING`` (a result may be ``None``)."""
    return view.result if view.finished and view.status == "done" else _MISSING


def result_html(value: Any, *, css: bool = True) -> str:
    """``✔ result: …``, cut at its end; when cut, a ``<details>`` that opens to all of it. A
    text of several lines opens to the text itself, its line breaks as line breaks (a repr
    would show them as ``\\n``)."""
    e = html.escape
    lines = value.splitlines() if isinstance(value, str) else []
    whole = _whole.repr(value)
    first = " ".join(whole.split())
    cls = ' class="nwm-done"' if css else ' style="color:#1a7f37;margin-top:2px"'
    if len(lines) > 1:
        shown = value[: _whole.maxstring]
        first = repr(lines[0])[:-1]
        size = f"{len(lines):,} lines"
    elif len(first) <= RESULT_CHARS and "\n" not in whole:
        return f"<div{cls}>✔ result: <code>{e(first)}</code></div>"
    else:
        shown, size = whole, f"{len(whole):,} characters"
    dim = ' class="nwm-dim"' if css else ' style="opacity:.8"'
    pre = "white-space:pre-wrap;max-height:16em;overflow:auto;margin:2px 0 4px;font-size:12px"
    return (
        f"<details{cls}><summary>✔ result: <code>{e(first[: RESULT_CHARS - 1])}…</code> "
        f"<span{dim}>({size}: show all)</span></summary>"
        f'<pre style="{pre}">{e(shown)}</pre></details>'
    )


def progress_html(view: RunView) -> str:
    e = html.escape
    done = view.steps_done
    parts = [f"<b>{done}</b> {plural(done, 'step')} done"]
    replayed = sum(view.replayed.values())
    if replayed:  # a rerun: these were applied from the recorded run, not called
        names = ", ".join(sorted(view.replayed))
        parts[0] += f' (<b class="replayed">{replayed}</b> replayed: {e(names)})'
    running = len(view.running)
    names = ", ".join(sorted(set(view.running)))
    parts.append(
        f'<b class="running">{running}</b> running ({e(names)})' if running else "0 running"
    )
    queued = sum(view.queued.values())
    where = ", ".join(f"{e(k)} {v}" for k, v in sorted(view.queued.items()))
    parts.append(f"<b>{queued}</b> queued" + (f" ({where})" if where else ""))
    if view.waiting:
        names = ", ".join(sorted(set(view.waiting)))
        parts.append(f"<b>{len(view.waiting)}</b> waiting ({e(names)})")
    if view.questions:
        n = len(view.questions)
        parts.append(f'<b class="waiting">{n}</b> {plural(n, "question")} open')
    if view.stalled and not view.finished:
        parts.append(f'<span class="waiting">stalled: {e(view.stalled)}</span>')
    return f'<div class="nwm-progress">{" · ".join(parts)}</div>'


def header_html(
    view: RunView, *, traceback: str | None, cancelled: str, note: str, handler: Any = None
) -> str:
    """Status line, progress and notices. ``traceback`` is the failed run's, formatted once
    by the monitor; ``cancelled`` why it was cancelled; ``note`` the last action's outcome."""
    e = html.escape
    colour = STATUS_COLOURS.get(view.status, "#4a5568")
    lines = [
        f'<div class="nwm-head"><span class="nwm-name">{e(view.workflow)}</span>'
        f'<span class="nwm-dim">run</span><code>{e(view.run_id)}</code>'
        f'<span class="nwm-pill" style="background:{colour}">{e(view.status)}</span>'
        f'<span class="nwm-dim">{duration(view.elapsed)}</span></div>',
        progress_html(view),
    ]
    trace = (
        f"<details><summary>traceback</summary><pre>{e(traceback)}</pre></details>"
        if traceback
        else ""
    )
    for step, error in view.failed.items():
        lines.append(
            f'<div class="nwm-failed">✖ step <b>{e(step)}</b> failed: '
            f"{e(short_text(error, 300))}{trace}</div>"
        )
    if view.status == "failed" and not view.failed and view.error is not None:
        lines.append(f'<div class="nwm-failed">✖ {e(short_text(str(view.error), 300))}</div>')
    if view.status == "cancelled":
        why = f": {e(cancelled)}" if cancelled else ""
        lines.append(f'<div class="nwm-cancelled">■ cancelled{why}</div>')
    result = result_of(view)
    if result is not _MISSING:
        lines.append(result_html(result))
    if view.checkpointed and view.status != "done":
        lines.append(
            '<div class="nwm-dim">↻ checkpointed: continue it later, even after a restart, '
            f"with <code>{e(_resume_line(view, handler))}</code></div>"
        )
    if note:
        lines.append(f'<div class="nwm-dim">{e(note)}</div>')
    return "".join(lines)


def _resume_line(view: RunView, handler: Any) -> str:
    """The line that continues the run in a new cell: ``await Name().resume('id')``, with
    ``store=store`` when a new instance would not find the run's store by itself."""
    if handler is None:
        return f"workflow.resume({view.run_id!r})"
    return "await " + resume_call(handler.ctx.workflow, view.run_id, handler.checkpoint_store)


class StoreTable:
    """The store as a table, redrawn only when a key changed; changed keys are marked until
    the next refresh. Values arrive as the store keeps them (tagged JSON) and are decoded only
    when they changed."""

    def __init__(self) -> None:
        self._seen: dict[str, Any] = {}  # key -> encoded value at the last refresh
        self._rows: dict[str, tuple[str, str, str]] = {}
        self._changed: set[str] = set()
        self._drawn = False

    def update(self, encoded: dict[str, Any]) -> str | None:
        """The table's HTML if it changed since the last refresh (``None`` if not)."""
        seen = self._seen
        changed: set[str] = set()
        for key, value in encoded.items():
            old = seen.get(key, _MISSING)
            if old is value or (old is not _MISSING and old == value):
                continue
            changed.add(key)
            try:
                self._rows[key] = store_rows({key: decode(value, path=key)})[0]
            except Exception as exc:  # show what cannot be read instead of failing
                self._rows[key] = (key, "?", f"<unreadable: {exc!r}>")
        gone = [k for k in self._rows if k not in encoded]
        for key in gone:
            del self._rows[key]
        self._seen = encoded
        if not changed and not gone and not self._changed and self._drawn:
            return None
        self._changed = changed
        self._drawn = True
        return self.html()

    def html(self) -> str:
        e = html.escape
        title = '<div class="nwm-title">store</div>'
        if not self._rows:
            return title + '<div class="nwm-dim">empty</div>'
        keys = sorted(self._rows)
        rows = []
        for key in keys[:STORE_ROWS]:
            _, typ, value = self._rows[key]
            mark = key in self._changed
            rows.append(
                f'<tr class="{"changed" if mark else ""}"><td class="mark" title="changed">'
                f'{"●" if mark else ""}</td><td class="key"><code>{e(key)}</code></td>'
                f'<td class="nwm-dim type">{e(typ)}</td>'
                f'<td class="value"><code>{e(value)}</code></td></tr>'
            )
        more = len(keys) - STORE_ROWS
        tail = f'<div class="nwm-dim">… and {more} more keys</div>' if more > 0 else ""
        return (
            f'{title}<div class="nwm-table"><table><tr><th></th><th>key</th><th>type</th>'
            f"<th>value</th></tr>{''.join(rows)}</table></div>{tail}"
        )


__all__ = ["StoreTable", "header_html", "progress_html", "result_html", "result_of", "short"]
