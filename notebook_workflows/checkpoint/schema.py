"""The shape a record must have before it is folded into a snapshot.

A record read from a store is JSON the store kept, and a store can be damaged or edited by
hand: a base whose queue became an object, a delta whose ``queue_add`` became ``true``.
``check_base`` and ``check_delta`` look at every part of a parsed record that rebuilding a
snapshot uses (``delta.apply_delta``) or that the displays of a snapshot read (the status,
the counters, the waiters), and raise ``ValueError`` saying which part is wrong; the history
turns that into a ``SnapshotError`` naming the store, the run and the snapshot.

Design decisions:

* Types only, with ``type(...) is`` tests: a delta's check is a few comparisons per key it
  holds, and a base's a few per queued event and per step (never per store value). What lies
  deeper (an event's fields, a store value's tags, a step name the workflow lacks) is checked
  where it is used: ``Context.from_dict`` when a run is resumed or forked, with the same
  ``ContextSerdeError`` a hand-made snapshot gets.
* Keys a record may carry that the fold does not read (``done``, ``answers``, ``edits``, keys
  of later versions) are left to their readers.
* Numbers are ``int`` and not ``bool`` (``True`` is an ``int`` to Python, never to a record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ContextSerdeError
from ..snapshot import _check_graph

__all__ = ["check_base", "check_delta"]


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_dict(value: Any) -> bool:
    return type(value) is dict


def _is_list(value: Any) -> bool:
    return type(value) is list


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _is_dict_or_none(value: Any) -> bool:
    return value is None or type(value) is dict


def _list_of(item: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return type(value) is list and all(map(item, value))

    return check


def _queued(item: Any) -> bool:
    """A queue entry, a collected event: an object with a number ``seq``."""
    return type(item) is dict and type(item.get("seq")) is int


def _running(item: Any) -> bool:
    """An in-flight invocation: an object with a number ``id`` and a number ``seq``."""
    return type(item) is dict and type(item.get("id")) is int and type(item.get("seq")) is int


def _collected_add(item: Any) -> bool:
    return _queued(item) and type(item.get("step")) is str and "event" in item


def _step_and_seq(item: Any) -> bool:
    return type(item) is list and len(item) == 2 and _is_str(item[0]) and _is_int(item[1])


_queue = _list_of(_queued)


def _collected(value: Any) -> bool:
    """A base's collect buffers: step name -> list of collected events."""
    return value is None or (type(value) is dict and all(map(_queue, value.values())))


def _stats(value: Any) -> bool:
    """Figures per part (``step_runs``, ``step_seconds``): an object of objects."""
    return type(value) is dict and all(map(_is_dict, value.values()))


def _graph(value: Any) -> bool:
    try:
        _check_graph(value)
    except ContextSerdeError:
        return False
    return True


_QUEUE = "a list of queued events (objects with a number 'seq')"
_FLIGHTS = "a list of invocations (objects with a number 'id' and 'seq')"

# part -> (its check, what it must be, in words); the parts a delta carries whole are a base's
SMALL = {
    "run_id": (_is_str, "text"),
    "status": (_is_str, "text"),
    "steps_done": (_is_int, "a number"),
    "waiters": (_is_list, "a list"),
    "questions": (_is_list, "a list"),
    "stop": (_is_dict_or_none, "an object or null"),
    "counters": (_is_dict, "an object"),
    "recoveries": (_is_dict, "an object"),
    "joins": (_is_dict_or_none, "an object or null"),
    "stats": (_stats, "an object of objects"),
}
DELTA = {
    **SMALL,
    "store_set": (_is_dict, "an object"),
    "store_deleted": (_list_of(_is_str), "a list of keys"),
    "queue_empty": (_is_bool, "true or false"),
    "queue_add": (_queue, _QUEUE),
    "queue_remove": (_list_of(_is_int), "a list of numbers"),
    "in_flight_empty": (_is_bool, "true or false"),
    "in_flight_put": (_list_of(_running), _FLIGHTS),
    "in_flight_remove": (_list_of(_is_int), "a list of numbers"),
    "collected_add": (_list_of(_collected_add), "a list of collected events"),
    "collected_remove": (_list_of(_step_and_seq), "a list of [step, seq] pairs"),
}
BASE = {
    **SMALL,
    "workflow": (_is_str, "text"),
    "graph": (_graph, "a graph of steps"),
    "store": (_is_dict, "an object"),
    "queue": (_queue, _QUEUE),
    "in_flight": (_list_of(_running), _FLIGHTS),
    "collected": (_collected, "an object of lists of collected events"),
}
BASE_NEEDS = ("store", "queue", "in_flight")


def check_delta(data: dict[str, Any]) -> None:
    """Raise ``ValueError`` if a part of the parsed delta ``data`` is not what a delta holds."""
    _check(data, DELTA)


def check_base(data: dict[str, Any]) -> None:
    """Raise ``ValueError`` if the parsed base ``data`` lacks a part a snapshot needs, or a
    part is not what a base holds."""
    missing = [key for key in BASE_NEEDS if key not in data]
    if missing:
        raise ValueError(f"it has no {' and no '.join(map(repr, missing))}")
    _check(data, BASE)


def _check(data: dict[str, Any], parts: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    for key, value in data.items():
        part = parts.get(key)
        if part is not None and not part[0](value):
            raise ValueError(f"its {key!r} is not {part[1]}{_found(value)}")


def _found(value: Any) -> str:
    """What a wrong part holds, in words, when it is not a container (for an error message:
    a list or an object that holds a wrong entry is named by what it should be)."""
    if type(value) in (list, dict):
        return ""
    if value is None:
        return " (it is null)"
    kind = {bool: "true or false", int: "a number", float: "a number", str: "text"}
    return f" (it is {kind.get(type(value), type(value).__name__)})"
