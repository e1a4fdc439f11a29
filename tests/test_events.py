"""Events: validated declared fields, free extra fields, reprs that show everything."""

from __future__ import annotations

import pydantic
import pytest

from notebook_workflows import Event, HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent


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
