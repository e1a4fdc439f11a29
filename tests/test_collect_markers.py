"""collect: the peer's Collect / All / Take markers, as plain data for the runtime."""

from __future__ import annotations

import dataclasses
from typing import Annotated, get_args

import pytest

from notebook_workflows import Event
from notebook_workflows.collect import All, Cardinality, Collect, Take


class Result(Event):
    value: int


def test_collect_defaults_to_all() -> None:
    assert Collect() == Collect(All()) == Collect(cardinality=All())
    assert isinstance(Collect().cardinality, Cardinality)


def test_take_keeps_n_and_refuses_anything_but_a_positive_integer() -> None:
    assert Collect(Take(3)).cardinality.n == 3  # type: ignore[attr-defined]
    for bad in (0, -2, 1.5, True, "1"):
        with pytest.raises(ValueError, match="Take"):
            Take(bad)  # type: ignore[arg-type]


def test_collect_takes_a_cardinality_and_says_which() -> None:
    with pytest.raises(TypeError, match=r"All\(\) or Take\(n\)"):
        Collect(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"All\(\) or Take\(n\)"):
        Collect(Cardinality())


def test_markers_are_frozen_hashable_values() -> None:
    assert {Take(1), Take(1), All()} == {Take(1), All()}
    with pytest.raises(dataclasses.FrozenInstanceError):
        Take(1).n = 2  # type: ignore[misc]


def test_a_marker_rides_on_a_list_annotation() -> None:
    annotation = Annotated[list[Result], Collect(Take(1))]
    element, marker = get_args(annotation)
    assert element == list[Result] and marker == Collect(Take(1))
