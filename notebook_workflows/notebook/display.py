"""Plain-text and HTML pictures of a run, shared by the handler's display and the monitor.

Everything here reads one ``handler.view()`` and returns strings: no widgets, no I/O, so a
notebook saved after execution shows the same picture on GitHub as in JupyterLab, and a plain
console gets readable text. Values are shortened with ``reprlib`` so a huge store costs the same
to show as a small one. The HTML uses inline styles only (no ``<style>``, no classes): that is
what survives JupyterLab's sanitizer in a notebook it does not trust, and GitHub's.
"""

from __future__ import annotations

import html
import reprlib
from typing import TYPE_CHECKING, Any

from ..codec import RawJSON, decode_raw
from ..serialization import decode

if TYPE_CHECKING:
    from ..events import Event
    from ..handler import WorkflowHandler
    from ..runtime.view import RunView


class _EndCut(reprlib.Repr):
    """``reprlib`` cuts a long string in its middle (``'abc...xyz'``); a reader wants its
    beginning, so strings are cut at their end here: ``'abcdefgh…'``."""

    def repr_str(self, x: str, level: int) -> str:
        if len(x) <= self.maxstring:
            return repr(x)
        shown = repr(x[: self.maxstring - 1])
        return shown[:-1] + "…" + shown[-1]


_repr = _EndCut()
_repr.maxstring = 48
_repr.maxother = 48
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdict = 6
_repr.maxlevel = 3

# Backgrounds of the status pill, under white text (a contrast of 4.9:1 or more).
STATUS_COLOURS = {
    "running": "#1d6fd1",
    "waiting": "#8a5a00",
    "done": "#1a7f37",
    "failed": "#c53030",
    "cancelled": "#57606a",
}


def plural(n: int, word: str) -> str:
    """``word`` as ``n`` of them: "1 step", "2 steps"."""
    return word if n == 1 else word + "s"


def short(value: Any, limit: int = 80) -> str:
    """A bounded one-line repr."""
    text = _repr.repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def event_summary(event: Event, limit: int = 80) -> str:
    """``Loop(i=3, note='…')`` within ``limit`` characters."""
    fields = ", ".join(f"{k}={short(v, 40)}" for k, v in event.fields().items())
    return short_text(f"{type(event).__name__}({fields})", limit)


def short_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def store_rows(values: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, type, short value)`` per store key, sorted by key."""
    return [(k, type(v).__name__, short(v, 60)) for k, v in sorted(values.items())]


def duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def decoded_store(view: RunView) -> dict[str, Any]:
    """The store's values as Python objects; a value that cannot be read shows why."""
    values: dict[str, Any] = {}
    for key, value in view.store.items():
        try:
            # (a value still held as text is one whose text did not parse: its error says why)
            if type(value) is RawJSON:
                values[key] = decode_raw(value, key)
            else:
                values[key] = decode(value, path=key)
        except Exception as exc:
            values[key] = _Unreadable(exc)
    return values


class _Unreadable:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"<unreadable: {self.error!r}>"


def handler_text(handler: WorkflowHandler, view: RunView | None = None) -> str:
    """The handler's plain-text picture: one line, plus the queue and last step when stepping."""
    view = view or handler.view()
    head = (
        f"WorkflowHandler({view.workflow}, run {view.run_id!r}, {view.status}, "
        f"{view.steps_done} {plural(view.steps_done, 'step')} done)"
    )
    stalled = f"\n  stalled: {view.stalled}" if view.stalled and not view.finished else ""
    if not view.stepwise:
        return head + stalled
    lines = [head + stalled, f"  queued: {len(view.queue)}"]
    for item in view.queue[:8]:
        lines.append(f"    {item.step} <- {event_summary(item.event, 60)}")
    last = view.last
    if last is not None:
        produced = ", ".join(event_summary(e, 40) for e in last.produced) or "nothing"
        lines.append(f"  last step: {last.step}({event_summary(last.event, 40)}) -> {produced}")
    return "\n".join(lines)


def handler_html(handler: WorkflowHandler, view: RunView | None = None) -> str:
    """The handler's HTML card: status, queue, last step and store."""
    view = view or handler.view()
    colour = STATUS_COLOURS.get(view.status, "#4a5568")
    e = html.escape
    parts = [
        '<div style="font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;'
        "border:1px solid var(--jp-border-color2,#cbd5e0);border-radius:6px;padding:8px 12px;"
        'max-width:760px;text-align:left">',
        f"<div><b>{e(view.workflow)}</b> · run <code>{e(view.run_id)}</code> · "
        f'<span style="color:#fff;background:{colour};font-weight:600;border-radius:999px;'
        f'padding:0 8px">{e(view.status)}</span> · '
        f"{view.steps_done} {plural(view.steps_done, 'step')} done · "
        f"{duration(view.elapsed)}</div>",
    ]
    for step, error in view.failed.items():
        parts.append(
            f'<div style="color:#c53030">step <b>{e(step)}</b> failed: '
            f"{e(short_text(error, 200))}</div>"
        )
    if view.stalled and not view.finished:
        parts.append(f'<div style="color:#b7791f">stalled: {e(view.stalled)}</div>')
    if view.questions:
        parts.append(
            "<div>waiting for a human: "
            + "; ".join(f"<i>{e(q)}</i>" for q in view.questions)
            + "</div>"
        )
    if view.queue:
        rows = "".join(
            f"<tr>{_td(e(item.step))}{_td(f'<code>{e(event_summary(item.event, 70))}</code>')}</tr>"
            for item in view.queue[:12]
        )
        more = f"<div>… and {len(view.queue) - 12} more</div>" if len(view.queue) > 12 else ""
        parts.append(_table("queued", ("step", "event"), rows) + more)
    last = view.last
    if last is not None:
        produced = ", ".join(event_summary(x, 50) for x in last.produced) or "nothing"
        parts.append(
            f"<div>last step: <b>{e(last.step)}</b>(<code>{e(event_summary(last.event, 60))}"
            f"</code>) → <code>{e(produced)}</code></div>"
        )
    values = decoded_store(view)
    if values:
        rows = "".join(
            f"<tr>{_td(f'<code>{e(k)}</code>')}{_td(e(t))}{_td(f'<code>{e(v)}</code>')}</tr>"
            for k, t, v in store_rows(values)[:20]
        )
        parts.append(_table("store", ("key", "type", "value"), rows))
    parts.append("</div>")
    return "".join(parts)


# Left-aligned, top-aligned cells: JupyterLab's output area right-aligns table cells otherwise.
_CELL = "text-align:left;vertical-align:top;padding:1px 12px 1px 0"


def _td(content: str) -> str:
    return f'<td style="{_CELL}">{content}</td>'


def _table(title: str, columns: tuple[str, ...], rows: str) -> str:
    head = "".join(f'<th style="{_CELL}">{c}</th>' for c in columns)
    return (
        f'<div style="margin-top:6px"><b>{title}</b>'
        '<table style="border-collapse:collapse;margin:2px 0 0 0">'
        f"<tr>{head}</tr>{rows}</table></div>"
    )
