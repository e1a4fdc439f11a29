"""Plain-text and HTML pictures of a run, shared by the handler's display and the monitor.

Everything here reads a ``RunStats``/handler and returns strings: no widgets, no I/O, so a
notebook saved after execution shows the same picture on GitHub as in JupyterLab, and a plain
console gets readable text. Values are shortened with ``reprlib`` so a huge store costs the same
to show as a small one.
"""

from __future__ import annotations

import html
import reprlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import Event
    from .handler import WorkflowHandler

_repr = reprlib.Repr()
_repr.maxstring = 48
_repr.maxother = 48
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdict = 6
_repr.maxlevel = 3

STATUS_COLOURS = {
    "running": "#1d6fd1",
    "waiting": "#b7791f",
    "done": "#2f855a",
    "failed": "#c53030",
    "cancelled": "#718096",
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


def handler_text(handler: WorkflowHandler) -> str:
    """The handler's plain-text picture: one line, plus the queue and last step when stepping."""
    stats = handler.stats()
    head = (
        f"WorkflowHandler({stats.workflow}, run {stats.run_id!r}, {stats.status}, "
        f"{stats.steps_done} {plural(stats.steps_done, 'step')} done)"
    )
    driver = handler._driver
    if not driver.stepwise or driver.finished:
        return head
    lines = [head]
    queued = driver.read(driver.state.queued_events)
    lines.append(f"  queued: {len(queued)}")
    for _, step, event in queued[:8]:
        lines.append(f"    {step} <- {event_summary(event, 60)}")
    last = driver.last
    if last is not None:
        produced = ", ".join(event_summary(e, 40) for e in last.produced) or "nothing"
        lines.append(f"  last step: {last.step}({event_summary(last.event, 40)}) -> {produced}")
    return "\n".join(lines)


def handler_html(handler: WorkflowHandler) -> str:
    """The handler's HTML card: status, queue, last step and store."""
    stats = handler.stats()
    driver = handler._driver
    colour = STATUS_COLOURS.get(stats.status, "#4a5568")
    e = html.escape
    parts = [
        '<div style="font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;'
        'border:1px solid #cbd5e0;border-radius:6px;padding:8px 12px;max-width:760px">',
        f"<div><b>{e(stats.workflow)}</b> · run <code>{e(stats.run_id)}</code> · "
        f'<span style="color:{colour};font-weight:600">{e(stats.status)}</span> · '
        f"{stats.steps_done} {plural(stats.steps_done, 'step')} done · "
        f"{duration(stats.elapsed)}</div>",
    ]
    if stats.failed:
        for step, error in stats.failed.items():
            parts.append(
                f'<div style="color:#c53030">step <b>{e(step)}</b> failed: '
                f"{e(short_text(error, 200))}</div>"
            )
    if stats.questions:
        parts.append(
            "<div>waiting for a human: "
            + "; ".join(f"<i>{e(q)}</i>" for q in stats.questions)
            + "</div>"
        )
    if not driver.finished:
        queued = driver.read(driver.state.queued_events)
        if queued:
            rows = "".join(
                f"<tr><td>{e(step)}</td><td><code>{e(event_summary(ev, 70))}</code></td></tr>"
                for _, step, ev in queued[:12]
            )
            more = f"<div>… and {len(queued) - 12} more</div>" if len(queued) > 12 else ""
            parts.append(_table("queued", ("step", "event"), rows) + more)
    last = driver.last
    if last is not None:
        produced = ", ".join(event_summary(x, 50) for x in last.produced) or "nothing"
        parts.append(
            f"<div>last step: <b>{e(last.step)}</b>(<code>{e(event_summary(last.event, 60))}"
            f"</code>) → <code>{e(produced)}</code></div>"
        )
    values = handler.ctx.store.to_dict()
    if values:
        rows = "".join(
            f"<tr><td><code>{e(k)}</code></td><td>{e(t)}</td><td><code>{e(v)}</code></td></tr>"
            for k, t, v in store_rows(values)[:20]
        )
        parts.append(_table("store", ("key", "type", "value"), rows))
    parts.append("</div>")
    return "".join(parts)


def _table(title: str, columns: tuple[str, ...], rows: str) -> str:
    head = "".join(f'<th style="text-align:left;padding-right:12px">{c}</th>' for c in columns)
    return (
        f'<div style="margin-top:6px"><b>{title}</b><table style="border-collapse:collapse">'
        f"<tr>{head}</tr>{rows}</table></div>"
    )
