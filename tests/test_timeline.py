"""The timeline: step invocations over time, stacked where they overlapped."""

from __future__ import annotations

import re

from notebook_workflows.events import StartEvent, StepFailed, StepFinished, StepStarted
from notebook_workflows.notebook.timeline import (
    Span,
    Timeline,
    most_at_once,
    spans_from_snapshots,
    timeline_html,
)


def bars(page: str) -> list[str]:
    return re.findall(r'<div title="([^"]*)" style="position:absolute', page)


def test_overlapping_invocations_of_a_step_stack_in_its_lane() -> None:
    spans = [
        Span("fetch", 0.0, 1.0, "done"),
        Span("fetch", 0.2, 1.2, "done"),
        Span("fetch", 0.4, 1.4, "done"),
        Span("join", 1.5, 1.6, "done"),
    ]
    page = timeline_html(spans, now=2.0)
    assert most_at_once(spans, now=2.0) == 3
    assert "at most 3 at once" in page and "fetch" in page and "x3" in page
    tops = re.findall(r"top:(\d+)px", page)
    assert tops[:3] == ["1", "8", "15"]  # three rows in fetch's lane
    assert tops[3] == "1"  # join ran alone
    assert len(bars(page)) == 4


def test_records_make_spans_and_a_retry_is_told_from_a_failure() -> None:
    line = Timeline()
    ev = StartEvent()
    line.add_record(StepStarted("r", "a", ev, 1, at=10.0))
    line.add_record(StepFailed("r", "a", ev, ValueError("x"), 1, True, 0.5, at=10.5))
    line.add_record(StepStarted("r", "a", ev, 2, at=10.6))
    line.add_record(StepFinished("r", "a", ev, (), 0.4, at=11.0))
    line.add_record(StepFinished("r", "b", ev, (), 0.25, at=11.5))  # its start was not followed
    assert [(s.step, s.start, s.end, s.state) for s in line.spans] == [
        ("a", 10.0, 10.5, "retried"),
        ("a", 10.6, 11.0, "done"),
        ("b", 11.25, 11.5, "done"),
    ]
    assert line.finished == 2


def test_a_run_that_ends_closes_what_still_ran_and_waiting_is_drawn_apart() -> None:
    line = Timeline()
    line.add_record(StepStarted("r", "ask", StartEvent(), at=1.0))
    line.mark_waiting(["ask"])
    assert line.spans[0].state == "waiting"
    assert "#d4a72c" in timeline_html(line.spans, now=2.0)
    line.close(3.0)
    assert (line.spans[0].end, line.spans[0].state) == (3.0, "cancelled")


class _Snap:
    def __init__(self, seq: int, step: str | None, at: float, seconds: dict[str, float]):
        self.seq, self.step, self.created_at = seq, step, at
        self.context = {"stats": {"step_seconds": seconds}}


def test_a_stored_run_gives_one_span_per_step_snapshot() -> None:
    history = [
        _Snap(0, None, 100.0, {}),
        _Snap(1, "a", 101.0, {"a": 0.5}),
        _Snap(2, "b", 102.0, {"a": 0.5, "b": 0.25}),
        _Snap(3, "a", 103.0, {"a": 1.5, "b": 0.25}),
    ]
    spans = spans_from_snapshots(history)
    assert [(s.step, s.start, s.end) for s in spans] == [
        ("a", 100.5, 101.0),
        ("b", 101.75, 102.0),
        ("a", 102.0, 103.0),
    ]


def test_nothing_ran_nothing_drawn() -> None:
    assert timeline_html([], now=1.0) == ""
