"""Events: validated declared fields, free extra fields, reprs that show everything, a dict's
reading interface, and llama-index-workflows' stream events."""

from __future__ import annotations

from datetime import datetime, timezone

import pydantic
import pytest

from notebook_workflows import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.events import (
    IdleReleasedEvent,
    InternalDispatchEvent,
    RunStatusChanged,
    StepFailed,
    StepFailedEvent,
    StepFinished,
    StepStarted,
    StepState,
    StepStateChanged,
    UnhandledEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowIdleEvent,
    WorkflowTimedOutEvent,
)


class Scored(Event):
    score: float


def test_extra_fields_are_readable_as_attributes_by_key_and_with_get() -> None:
    ev = StartEvent(ids=[1, 2], name="docs")
    assert ev.ids == [1, 2]
    assert ev["name"] == "docs"
    assert ev.get("missing", 0) == 0
    assert "ids" in ev and "missing" not in ev


def test_missing_key_raises_key_error_naming_the_field() -> None:
    with pytest.raises(KeyError, match="missing"):
        StartEvent()["missing"]


def test_declared_fields_are_validated() -> None:
    assert Scored(score="1.5").score == 1.5
    with pytest.raises(pydantic.ValidationError):
        Scored(score="high")


def test_reprs_show_every_field() -> None:
    assert repr(InputRequiredEvent(prefix="Approve?")) == "InputRequiredEvent(prefix='Approve?')"
    assert repr(HumanResponseEvent(response="yes")) == "HumanResponseEvent(response='yes')"
    assert repr(StartEvent(ids=[1])) == "StartEvent(ids=[1])"
    assert "result=42" in repr(StopEvent(result=42))


def test_fields_lists_declared_and_extra() -> None:
    assert Scored(score=1, note="x").fields() == {"score": 1.0, "note": "x"}


# -- reading an event like a dict (as llama-index-workflows events do) ---------------------------


def test_an_event_reads_like_a_dict_of_its_fields() -> None:
    ev = Scored(score=2, note="x")
    assert len(ev) == 2
    assert list(ev) == ["score", "note"]
    assert list(ev.keys()) == ["score", "note"]
    assert list(ev.values()) == [2.0, "x"]
    assert dict(ev.items()) == {"score": 2.0, "note": "x"}
    assert ev.to_dict() == {"score": 2.0, "note": "x"} == dict(ev)


def test_setting_an_item_sets_the_field() -> None:
    ev = StartEvent()
    ev["topic"] = "cats"
    assert ev.topic == "cats" and ev["topic"] == "cats" and "topic" in ev
    scored = Scored(score=1)
    scored["score"] = 3.0
    assert scored.score == 3.0


def test_to_dict_is_a_copy() -> None:
    ev = StartEvent(a=1)
    ev.to_dict()["a"] = 2
    assert ev.a == 1


def test_an_event_without_fields_is_still_true() -> None:
    assert len(StartEvent()) == 0
    assert StartEvent()


def test_a_field_named_like_a_mapping_method_reads_as_the_field() -> None:
    ev = StartEvent(items=[1, 2], keys="k")
    assert ev.items == [1, 2] and ev.keys == "k"
    assert ev["items"] == [1, 2]


def test_declaring_a_field_named_items_does_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    class Batch(Event):
        items: list[int]
        values: list[str] = []

    assert Batch(items=[1]).items == [1]
    assert not [w for w in recwarn if "shadows" in str(w.message)]


def test_a_missing_attribute_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nope"):
        StartEvent().nope  # noqa: B018


# -- StopEvent: result shows only when set --------------------------------------------------------


class Answer(StopEvent):
    answer: int


def test_a_stop_event_subclass_shows_its_own_fields_not_result_none() -> None:
    ev = Answer(answer=42)
    assert repr(ev) == "Answer(answer=42)"
    assert ev.model_dump() == {"answer": 42}
    assert ev.model_dump_json() == '{"answer":42}'


def test_a_plain_stop_event_shows_result_when_set() -> None:
    assert repr(StopEvent()) == "StopEvent()"
    assert StopEvent().model_dump() == {}
    assert StopEvent(result=[1]).model_dump() == {"result": [1]}
    assert repr(Answer(answer=1, result="r")) == "Answer(result='r', answer=1)"


async def test_a_stop_event_subclass_is_what_the_run_returns() -> None:
    class Ask(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Answer:
            return Answer(answer=ev.n * 2)

    result = await Ask().run(n=21)
    assert isinstance(result, Answer) and repr(result) == "Answer(answer=42)"


# -- the peer's stream events ------------------------------------------------------------------


def test_the_peer_stream_events_exist_with_their_fields() -> None:
    failed = WorkflowFailedEvent(step_name="fetch", exception=ConnectionError("reset"))
    assert failed.attempts is None and failed.elapsed_seconds is None
    assert isinstance(failed, StopEvent) and "step_name='fetch'" in repr(failed)
    timed_out = WorkflowTimedOutEvent(timeout=5.0, active_steps=["fetch"])
    assert repr(timed_out) == "WorkflowTimedOutEvent(timeout=5.0, active_steps=['fetch'])"
    assert isinstance(WorkflowCancelledEvent(), StopEvent)
    step_failed = StepFailedEvent(
        step_name="fetch",
        input_event=StartEvent(url="u"),
        exception=ValueError("bad"),
        attempts=3,
        elapsed_seconds=1.5,
        failed_at=datetime.now(timezone.utc),
    )
    assert step_failed.input_event.url == "u"
    changed = StepStateChanged(
        name="fetch", step_state="running", worker_id="0", input_event_name="StartEvent"
    )
    assert changed.step_state is StepState.RUNNING and changed.output_event_name is None
    unhandled = UnhandledEvent(event_type="Ping", qualified_name="m.Ping", idle=True)
    assert isinstance(unhandled, InternalDispatchEvent) and unhandled.step_name is None
    assert issubclass(WorkflowIdleEvent, InternalDispatchEvent)
    assert issubclass(IdleReleasedEvent, StopEvent)
    with pytest.raises(pydantic.ValidationError):
        WorkflowFailedEvent(step_name="fetch", exception="not an exception")


def test_lifecycle_records_are_unchanged_slotted_dataclasses() -> None:
    started = StepStarted("run-1", "fetch", StartEvent())
    assert (started.attempt, started.at) == (1, 0.0)
    assert not hasattr(started, "__dict__")
    for record in (StepStarted, StepFinished, StepFailed, RunStatusChanged):
        assert "__slots__" in vars(record)


def test_get_and_item_access_never_return_a_method() -> None:
    ev = StartEvent()
    assert ev.get("items", 0) == 0 and ev.get("fields") is None
    assert "keys" not in ev and "get" not in ev
    with pytest.raises(KeyError, match="items"):
        ev["items"]


def test_a_property_reads_by_key_like_a_field() -> None:
    class Area(Event):
        w: int
        h: int

        @property
        def size(self) -> int:
            return self.w * self.h

    assert Area(w=2, h=3)["size"] == 6 and Area(w=2, h=3).get("size") == 6
