"""The timeline: which step ran when, for how long, and how many at once.

A Gantt-like strip with one lane per step (in the order steps first ran) and one bar per step
invocation; invocations of one step that overlap (a fan-out to several workers) stack in the
lane, so the strip shows the parallelism a run really had. Bars are coloured by outcome:
completed, running, waiting (for a human or an event), failed, failed and retried, stopped by
the run's end.

It is built from plain spans, so both pictures share it: the live monitor makes spans from the
``StepStarted``/``StepFinished``/``StepFailed`` records it follows, and the run browser from a
stored run's snapshots (each records the step it completed, when, and the step's cumulative
time, so an invocation's start is its snapshot's time minus the time it added). The HTML uses
inline styles only, so the same strip shows in a widget, a saved notebook and on GitHub.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .display import duration

MAX_BARS = 400  # the newest bars drawn; older ones are counted, not drawn
MAX_STACK = 6  # overlapping invocations drawn stacked in one lane; more overlap the last row
_BAR = 7  # pixels per stacked row
# Secondary text: the monitor's palette when its stylesheet is there, else JupyterLab's.
_DIM = "color:var(--nw-dim,var(--jp-ui-font-color2,#57606a))"
_COLOURS = {
    "done": "#4f7fcc",
    "running": "#e8590c",
    "failed": "#c92a2a",
    "retried": "#c48a0f",
    "cancelled": "#9aa3ad",
    "waiting": "#d4a72c",
}


@dataclass
class Span:
    """One step invocation: ``start`` and ``end`` in seconds since the epoch (``end`` None
    while it runs); ``state`` one of "done", "running", "waiting", "failed", "retried",
    "cancelled"."""

    step: str
    start: float
    end: float | None = None
    state: str = "running"
    label: str = ""


class Timeline:
    """Spans collected from a run's lifecycle records (``add_record``), newest kept."""

    def __init__(self, limit: int = 4 * MAX_BARS) -> None:
        self.spans: list[Span] = []
        self.dropped = 0  # spans no longer kept
        self.finished = 0  # StepFinished records taken
        self._open: dict[tuple[str, int], Span] = {}
        self._limit = limit
        self.version = 0  # changes whenever the picture would

    def add_record(self, record: Any, label: str = "") -> None:
        """Take a ``StepStarted``, ``StepFinished`` or ``StepFailed`` record."""
        name = type(record).__name__
        key = (record.step, id(record.event))
        if name == "StepStarted":
            span = Span(record.step, record.at, None, "running", label)
            self._open[key] = span
            self.spans.append(span)
            if len(self.spans) > self._limit:
                cut = len(self.spans) - self._limit
                self.dropped += cut
                del self.spans[:cut]
        elif name in ("StepFinished", "StepFailed"):
            ended = self._open.pop(key, None)
            if ended is None:  # its start was not followed: draw it from its duration
                ended = Span(record.step, record.at - record.duration, None, "running", label)
                self.spans.append(ended)
            ended.end = record.at
            if name == "StepFinished":
                ended.state = "done"
                self.finished += 1
            else:
                ended.state = "retried" if record.will_retry else "failed"
        else:
            return
        self.version += 1

    def add_spans(self, spans: Iterable[Span]) -> None:
        """Take invocations already completed (read from a stored run's snapshots)."""
        before = len(self.spans)
        self.spans.extend(spans)
        self.finished += len(self.spans) - before
        self.version += 1

    def mark_waiting(self, steps: Iterable[str]) -> None:
        """Open invocations of these steps wait (for a human, for an event): drawn apart."""
        waiting = set(steps)
        for span in self._open.values():
            state = "waiting" if span.step in waiting else "running"
            if span.state != state:
                span.state = state
                self.version += 1

    def close(self, at: float) -> None:
        """The run ended: what still shows as running was stopped at ``at``."""
        if not self._open:
            return
        for span in self._open.values():
            if span.end is None:
                span.end = at
                span.state = "cancelled"
        self._open.clear()
        self.version += 1


def spans_from_snapshots(history: Sequence[Any]) -> list[Span]:
    """The completed invocations a stored run's snapshots record (``store.history(run_id)``):
    each step snapshot ends one, which took the time its step's total grew by."""
    spans: list[Span] = []
    before: dict[str, float] = {}
    for snap in history:
        try:
            context = snap.context
        except Exception:  # a snapshot that cannot be read draws nothing
            continue
        totals = (context.get("stats") or {}).get("step_seconds") or {}
        step = getattr(snap, "step", None)
        if step:
            took = max(0.0, float(totals.get(step, 0.0)) - before.get(step, 0.0))
            end = float(snap.created_at)
            spans.append(Span(step, end - took, end, "done", f"snapshot {snap.seq}"))
        before = {k: float(v) for k, v in totals.items()}
    return spans


def _rows(spans: Sequence[Span], now: float) -> list[int]:
    """For each span, its row within its lane: the lowest row free at its start."""
    free_at: dict[str, list[float]] = {}
    rows = []
    for span in sorted(range(len(spans)), key=lambda i: spans[i].start):
        s = spans[span]
        ends = free_at.setdefault(s.step, [])
        row = next((r for r, end in enumerate(ends) if end <= s.start), len(ends))
        end = s.end if s.end is not None else now
        if row == len(ends):
            ends.append(end)
        else:
            ends[row] = end
        rows.append((span, min(row, MAX_STACK - 1)))
    out = [0] * len(spans)
    for i, row in rows:
        out[i] = row
    return out


def most_at_once(spans: Iterable[Span], now: float) -> int:
    """How many invocations ran at the same moment, at most."""
    points = []
    for s in spans:
        points.append((s.start, 1))
        points.append((s.end if s.end is not None else now, -1))
    best = running = 0
    for _, change in sorted(points, key=lambda p: (p[0], p[1])):
        running += change
        best = max(best, running)
    return best


def timeline_html(
    spans: Sequence[Span], now: float, *, dropped: int = 0, missed: int = 0, started: float = 0
) -> str:
    """The strip as HTML (inline styles); an empty string when nothing ran yet."""
    if not spans:
        return ""
    shown = list(spans[-MAX_BARS:])
    dropped += len(spans) - len(shown)
    t0 = min(s.start for s in shown)
    if started and started < t0 and t0 - started < 3600:
        t0 = started
    t1 = max([now, *(s.end for s in shown if s.end is not None)])
    if all(s.end is not None for s in shown):
        t1 = max(s.end for s in shown if s.end is not None)
    total = max(t1 - t0, 1e-6)
    rows = _rows(shown, now)
    lanes: dict[str, list[int]] = {}
    for i, s in enumerate(shown):
        lanes.setdefault(s.step, []).append(i)
    e = html.escape
    parts = [
        '<div style="font-size:11px;line-height:1.3;text-align:left;'
        'font-family:var(--jp-ui-font-family,sans-serif)">'
    ]
    for step, members in lanes.items():
        depth = max(rows[i] for i in members) + 1
        height = depth * _BAR + 2
        bars = []
        for i in members:
            s = shown[i]
            end = s.end if s.end is not None else now
            left = (s.start - t0) / total * 100
            width = max((end - s.start) / total * 100, 0.0)
            colour = _COLOURS.get(s.state, _COLOURS["done"])
            tip = f"{s.step} · {duration(end - s.start)} · {s.state}"
            if s.label:
                tip += f" · {s.label}"
            bars.append(
                f'<div title="{e(tip)}" style="position:absolute;left:{left:.3f}%;'
                f"width:max({width:.3f}%,2px);top:{rows[i] * _BAR + 1}px;height:{_BAR - 2}px;"
                f'background:{colour};border-radius:2px"></div>'
            )
        n = len(members)
        parts.append(
            '<div style="display:flex;align-items:center;gap:8px;margin:1px 0">'
            f'<div title="{e(step)}" style="flex:none;width:13ch;overflow:hidden;'
            f'text-overflow:ellipsis;white-space:nowrap">{e(step)}'
            f'<span style="{_DIM}"> x{n}</span></div>'
            f'<div style="position:relative;flex:1 1 auto;height:{height}px;'
            'background:var(--nw-stripe,var(--jp-layout-color2,#f3f4f6));border-radius:3px">'
            f"{''.join(bars)}</div></div>"
        )
    notes = [f"{duration(total)} shown", f"at most {most_at_once(shown, now)} at once"]
    if dropped:
        notes.append(f"{dropped:,} earlier invocations not drawn")
    if missed:
        notes.append(f"{missed:,} ran while the monitor did not follow")
    parts.append(f'<div style="{_DIM};margin-top:2px">{" · ".join(notes)}</div></div>')
    return "".join(parts)
