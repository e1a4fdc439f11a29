"""Events: what steps exchange, and what a run reports about itself.

Two families live here. ``Event`` and its subclasses are the messages steps receive and return;
they are pydantic models so declared fields are validated, and they accept extra keyword fields
so ``StartEvent(ids=[1, 2])`` needs no class of its own. The lifecycle records (``StepStarted``,
``StepFinished``, ``StepFailed``, ``RunStatusChanged``) are what a handler's stream reports
besides the events steps write to it; they are small slotted dataclasses, not frozen ones,
because a run creates them for every step while someone listens and a frozen dataclass costs
three times as much to make. Treat them as read-only.

An event also reads like a dict, as in llama-index-workflows: ``len(ev)``, ``iter(ev)`` (the
field names), ``ev.keys()``, ``ev.values()``, ``ev.items()``, ``ev.to_dict()``, ``ev["k"] = v``.
One deliberate difference: the peer's mapping covers only the extra fields, ours every field,
declared and extra, the same fields ``ev["k"]`` and ``"k" in ev`` already answered for. The
mapping methods are found through ``__getattr__``, after the fields, not as class attributes:
an event may have a field called ``items`` or ``keys`` (``StartEvent(items=[...])``), which
then reads as the field, and declaring one does not make pydantic warn about shadowing.

The rest of the built-in events carry llama-index-workflows' names and fields, so code that
tests for them in a stream ports: ``WorkflowFailedEvent``, ``WorkflowTimedOutEvent``,
``WorkflowCancelledEvent``, ``StepFailedEvent``, ``StepStateChanged`` and their kin. Which of
them this engine publishes, and when, is said on each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_serializer


class Event(BaseModel):
    """Base class of every event.

    Extra keyword fields are kept and read like declared ones::

        ev = StartEvent(ids=[1, 2])
        ev.ids, ev["ids"], ev.get("missing", 0)
        dict(ev), len(ev), list(ev.items())
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True, defer_build=True)

    def __getitem__(self, key: str) -> Any:
        value = self._field(key)
        if value is _MISSING:
            raise KeyError(f"{type(self).__name__} has no field {key!r}")
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when the event has no such field."""
        value = self._field(key)
        return default if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._field(key) is not _MISSING

    def _field(self, key: str) -> Any:
        # A field, declared or extra, or a property; never a method (ev["items"] is no method).
        if key in self.__dict__:
            return self.__dict__[key]
        extra = self.__pydantic_extra__
        if extra and key in extra:
            return extra[key]
        if isinstance(getattr(type(self), key, None), property):
            return getattr(self, key)
        return _MISSING

    def fields(self) -> dict[str, Any]:
        """Every field, declared and extra, by name (values are not copied)."""
        data = dict(self.__dict__)
        if self.__pydantic_extra__:
            data.update(self.__pydantic_extra__)
        return data

    def __len__(self) -> int:
        return len(self.__dict__) + len(self.__pydantic_extra__ or ())

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # names, as a dict does
        return iter(self.fields())

    def __bool__(self) -> bool:
        return True  # an event without fields is still an event (``if ev:``)

    if TYPE_CHECKING:

        def keys(self) -> Any: ...
        def values(self) -> Any: ...
        def items(self) -> Any: ...
        def to_dict(self) -> dict[str, Any]: ...

    else:

        def __getattr__(self, name: str) -> Any:
            # Only reached when normal lookup fails: declared fields never come here. Extras
            # first (read here directly: it is the hot path, and pydantic's own lookup costs
            # more), then the mapping methods, so a field of the same name wins over them;
            # private attributes and the error message are pydantic's.
            if name[:1] != "_":
                try:
                    extra = object.__getattribute__(self, "__pydantic_extra__")
                except AttributeError:  # not initialised yet (a failed validation's repr)
                    extra = None
                if extra and name in extra:
                    return extra[name]
                view = _MAPPING_VIEWS.get(name)
                if view is not None:
                    return view.__get__(self, type(self))
            return BaseModel.__getattr__(self, name)


def _keys(self: Event) -> Any:
    """The field names (declared and extra), like ``dict.keys()``."""
    return self.fields().keys()


def _values(self: Event) -> Any:
    """The field values, like ``dict.values()``."""
    return self.fields().values()


def _items(self: Event) -> Any:
    """``(name, value)`` for every field, like ``dict.items()``."""
    return self.fields().items()


def _to_dict(self: Event, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Every field by name, as a new dict (values are not copied)."""
    return self.fields()


_MISSING: Any = object()
_MAPPING_VIEWS = {"keys": _keys, "values": _values, "items": _items, "to_dict": _to_dict}


class StartEvent(Event):
    """The event a run starts with; ``run(**fields)`` builds it."""

    def __getattr__(self, name: str) -> Any:
        try:
            # (pydantic defines BaseModel.__getattr__ only outside type checking)
            return super().__getattr__(name)  # type: ignore[misc]
        except AttributeError:
            if name.startswith("_"):
                raise
            given = ", ".join(f"{k}=" for k in self.fields()) or "no start fields"
            raise AttributeError(
                f"the run was not given {name!r}: start it with run({name}=...) "
                f"(it was given {given}), or read it with ev.get({name!r}, default)"
            ) from None


class StopEvent(Event):
    """Returning it ends the run; ``await handler`` gives its ``result``.

    A subclass with fields of its own is returned whole instead. ``result`` shows in the repr
    and in ``model_dump()`` only when it is set (not ``None``), as in llama-index-workflows, so
    a subclass shows its own fields rather than ``result=None``.
    """

    result: Any = None

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name != "result" or value is not None:
                yield name, value

    @model_serializer(mode="wrap")
    def _dump_without_unset_result(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("result", 0) is None:
            del data["result"]
        return data


class InputRequiredEvent(Event):
    """A question for a human; the run waits until a ``HumanResponseEvent`` arrives."""

    prefix: str = ""


class HumanResponseEvent(Event):
    """A human's answer to an ``InputRequiredEvent``."""

    response: str = ""


# -- llama-index-workflows' stream events ------------------------------------------------------
#
# Same names and fields as in workflows.events 2.26. This engine reports a run's life with the
# lifecycle records below; which of these it also publishes is said on each ("not published
# yet" means the type exists for code that names it, and the engine owner wires it).


class WorkflowTimedOutEvent(StopEvent):
    """The run went past its ``timeout`` (seconds); ``active_steps`` were still running.

    In llama-index-workflows it is streamed just before ``WorkflowTimeoutError`` is raised.
    Not published by this engine yet.
    """

    timeout: float
    active_steps: list[str]


class WorkflowCancelledEvent(StopEvent):
    """The run was cancelled by the user; streamed before ``WorkflowCancelledByUser`` is raised.
    Not published by this engine yet."""


class WorkflowFailedEvent(StopEvent):
    """A step failed for good (its retries spent, or a ``@catch_error`` handler raised).

    ``step_name`` is the step, ``exception`` what it raised, ``attempts`` how many times it ran
    and ``elapsed_seconds`` from its first attempt to the last (both ``None`` when the failure
    was not a step's, such as a stalled run). Not published by this engine yet.
    """

    step_name: str
    exception: Exception
    attempts: int | None = None
    elapsed_seconds: float | None = None


class IdleReleasedEvent(StopEvent):
    """llama-index-workflows' result for a run released while idle (by its server); never
    published by this engine."""


class StepFailedEvent(Event):
    """What a ``@catch_error`` handler receives when a step has failed for good.

    ``step_name`` is the step, ``input_event`` the event it failed on, ``exception`` what it
    raised, ``attempts`` how many times it ran, ``elapsed_seconds`` from its first attempt to the
    last, ``failed_at`` when (a timezone-aware UTC datetime). The handler returns an event to
    carry on with (a ``StopEvent`` ends the run successfully) or raises to fail the run.
    """

    step_name: str
    input_event: Event
    exception: Exception
    attempts: int
    elapsed_seconds: float
    failed_at: datetime


class Gathered(Event):
    """What a join step is run with: the values of its event parameters, by parameter name.

    A step with several event parameters (``async def join(self, a: A, b: B)``) gets one event
    per parameter; a step with a ``list[E]`` parameter gets the list. The runtime queues one
    ``Gathered`` once the join is complete and calls the step with its parts, so the step never
    sees this event itself; it shows in the run's queue, monitor and snapshots.
    """

    events: dict[str, Any]


class InternalDispatchEvent(Event):
    """Base of the events that expose what happens inside a run (streamed when the caller asks
    for internal events)."""


class WorkflowIdleEvent(InternalDispatchEvent):
    """The run is idle: nothing queued or running, and a step waits for an outside event
    (``ctx.wait_for_event``). Not published by this engine yet (its ``RunStatusChanged`` to
    ``"waiting"`` says the same)."""


class UnhandledEvent(InternalDispatchEvent):
    """An event sent into the run that no step and no waiter accepts.

    ``event_type`` is its class name, ``qualified_name`` its module and class, ``step_name`` the
    step it was addressed to (if any), ``idle`` whether the run is idle after it. Not published
    by this engine yet.
    """

    event_type: str
    qualified_name: str
    step_name: str | None = None
    idle: bool


class StepState(Enum):
    """Where one step invocation stands (``StepStateChanged.step_state``)."""

    PREPARING = "preparing"  # queued, waiting for a free worker
    RUNNING = "running"
    NOT_RUNNING = "not_running"


class StepStateChanged(InternalDispatchEvent):
    """A step invocation changed state: ``name`` the step, ``step_state`` its new state,
    ``worker_id`` the worker running it, ``input_event_name`` the event it took and
    ``output_event_name`` the one it produced, if any. Not published by this engine yet; its
    ``StepStarted`` / ``StepFinished`` / ``StepFailed`` records carry the same news."""

    name: str
    step_state: StepState
    worker_id: str
    input_event_name: str
    output_event_name: str | None = None


EventType = type[Event]


# -- lifecycle records ------------------------------------------------------------------------


@dataclass(slots=True)
class StepStarted:
    """A step invocation began (``attempt`` counts from 1)."""

    run_id: str
    step: str
    event: Event
    attempt: int = 1
    at: float = 0.0


@dataclass(slots=True)
class StepFinished:
    """A step invocation completed; ``produced`` holds the events it returned or sent;
    ``where`` says where it ran when not in the run's own process (a Dask worker's address,
    or host and process id for a process pool), else it is empty."""

    run_id: str
    step: str
    event: Event
    produced: tuple[Event, ...] = ()
    duration: float = 0.0
    at: float = 0.0
    where: str = ""


@dataclass(slots=True)
class StepFailed:
    """A step invocation raised; ``will_retry`` says whether its retry policy tries again."""

    run_id: str
    step: str
    event: Event
    error: BaseException
    attempt: int = 1
    will_retry: bool = False
    duration: float = 0.0
    at: float = 0.0


@dataclass(slots=True)
class RunStatusChanged:
    """The run's status changed (``"running"``, ``"waiting"``, ``"done"``, ...)."""

    run_id: str
    status: str
    detail: str = ""
    at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


LifecycleEvent = StepStarted | StepFinished | StepFailed | RunStatusChanged


__all__ = [
    "Event",
    "EventType",
    "HumanResponseEvent",
    "IdleReleasedEvent",
    "InputRequiredEvent",
    "InternalDispatchEvent",
    "LifecycleEvent",
    "RunStatusChanged",
    "StartEvent",
    "StepFailed",
    "StepFailedEvent",
    "StepFinished",
    "StepStarted",
    "StepState",
    "StepStateChanged",
    "StopEvent",
    "UnhandledEvent",
    "WorkflowCancelledEvent",
    "WorkflowFailedEvent",
    "WorkflowIdleEvent",
    "WorkflowTimedOutEvent",
]
