"""The monitor's event log: what it holds, and each entry formatted once as a line.

The log follows the run with ``handler.subscribe``: step starts and finishes, failures, status
changes, and the events steps write to the stream (with the step that wrote them, from
``runtime.current_step()``), plus the answers sent from the monitor. A step start whose finish
is logged later shows no line of its own: the finish's line says what went in and what came
out. Each line is formatted once and cached by entry; a line whose event had to be shortened
opens (``<details>``) to the event in full.

Following makes the run build a record for every step start and finish (a third more time on a
2,000-step chain of trivial steps, even for an empty listener), so the monitor follows at most
``LOG_BURST`` records per refresh interval, then pauses and says in one line (a ``Gap``) how
many steps ran meanwhile.
"""

from __future__ import annotations

import html
import reprlib
import traceback
from collections import deque
from collections.abc import Sequence
from typing import Any

from ...events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    RunStatusChanged,
    StepFailed,
    StepFinished,
    StepStarted,
    StopEvent,
)
from ..display import duration, event_summary, plural, short_text

LOG_BURST = 50  # step records the log follows per refresh interval before it pauses

_full = reprlib.Repr()  # "the full event": generous, still bounded in time and size
_full.maxstring = 1200
_full.maxother = 1200
_full.maxlist = _full.maxtuple = _full.maxset = _full.maxfrozenset = _full.maxdict = 40
_full.maxlevel = 5
_DETAIL_CHARS = 4000


class Published:
    """An event written to the run's stream (or an answer sent from the monitor), with the
    step that wrote it and when: lifecycle records carry these themselves."""

    __slots__ = ("at", "event", "step")

    def __init__(self, event: Event, step: str, at: float | None) -> None:
        self.event = event
        self.step = step
        self.at = at


class Recorded:
    """A line read from the run's checkpoints (a monitor made after the run ended follows
    nothing, so it shows what the store recorded: one line per snapshot)."""

    __slots__ = ("at", "kind", "step", "summary")

    def __init__(self, at: float, step: str, kind: str, summary: str) -> None:
        self.at = at
        self.step = step
        self.kind = kind
        self.summary = summary


def read_history(store: Any, run_id: str) -> list[Any]:
    """The run's snapshots in ``store`` (none without a store, or when it cannot be read)."""
    if store is None:
        return []
    try:
        return list(store.history(run_id))
    except Exception:  # a store that cannot be read: the monitor shows no more than without
        return []


def recorded_entries(history: Sequence[Any], ended: float) -> list[Recorded]:
    """The log of a run that ended before its monitor came: a line per snapshot, or one line
    that says why there is nothing to show."""
    if not history:
        why = (
            "this monitor was made after the run ended, and the run kept no checkpoints: "
            "its step starts and finishes were not recorded"
        )
        return [Recorded(ended, "", "(not followed)", why)]
    return [Recorded(s.created_at, s.step or "", "snapshot", s.describe()) for s in history]


class Gap:
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


class Row:
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
            if item.where:  # it ran in another process: which one (a Dask worker's address)
                self.summary += f" · on {item.where}"
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
        elif cls is Recorded:
            self.kind = item.kind
            self.cls = "status"
            self.summary = short_text(item.summary, 160)
            self.detail = ""
        elif cls is Gap:
            n = item.steps
            self.kind = "…"
            self.cls = "gap"
            self.summary = (
                f"{n:,} {plural(n, 'step')} ran faster than the log follows "
                f"({LOG_BURST} records a refresh); their records were not kept"
            )
            self.detail = ""
        else:  # Published
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


class EventLog:
    """The log's entries (the last ``size``), how many there ever were, and their lines."""

    def __init__(self, size: int) -> None:
        self.entries: deque[Any] = deque(maxlen=size)
        self.total = 0  # entries ever logged
        self._drawn = -1  # ``total`` when the log was last drawn
        self._rows: dict[int, tuple[Any, Row]] = {}  # id(entry) -> (entry, its row)

    def add(self, entry: Any) -> None:
        self.entries.append(entry)
        self.total += 1

    def changed(self) -> None:
        """An entry changed in place (a gap's count): draw the log again."""
        self._drawn = -1

    def rows(self, started: float) -> list[Row]:
        """The log's lines, oldest first (see the module docstring for what is left out)."""
        ended: set[int] = set()
        shown: list[Any] = []
        for item in reversed(self.entries):
            cls = item.__class__
            if cls is StepFinished or cls is StepFailed:
                ended.add(id(item.event))
            elif cls is StepStarted and id(item.event) in ended:
                ended.discard(id(item.event))  # an earlier attempt may have ended too
                continue
            shown.append(item)
        shown.reverse()
        rows: list[Row] = []
        cache = self._rows
        fresh: dict[int, tuple[Any, Row]] = {}
        memo: _Memo = {}
        for item in shown:
            hit = cache.get(id(item))
            if hit is not None and hit[0] is item and item.__class__ is not Gap:
                row = hit[1]
            else:
                row = Row(item, started, memo)
            fresh[id(item)] = (item, row)
            rows.append(row)
        self._rows = fresh
        return rows

    def update(self, started: float) -> str | None:
        """The log's HTML if it changed since it was last drawn (``None`` if not)."""
        if self.total == self._drawn:
            return None
        self._drawn = self.total
        rows = self.rows(started)
        body = "".join(row.html for row in rows) or '<div class="nwm-dim">none yet</div>'
        # column-reverse keeps the box scrolled to its end: the newest entry, at the bottom
        return f'<div class="nwm-log"><div>{body}</div></div>'

    def title(self) -> str:
        """``events · 1,234`` (and how many are no longer kept)."""
        dropped = self.total - len(self.entries)
        kept = f" · {dropped:,} older ones not kept" if dropped > 0 else ""
        return f"events · {self.total:,}{kept}"
