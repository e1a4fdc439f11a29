"""Events: what steps exchange, and what a run reports about itself.

Two families live here. ``Event`` and its subclasses are the messages steps receive and return;
they are pydantic models so declared fields are validated, and they accept extra keyword fields
so ``StartEvent(ids=[1, 2])`` needs no class of its own. The lifecycle records (``StepStarted``,
``StepFinished``, ``StepFailed``, ``RunStatusChanged``) are what a handler's stream reports
besides the events steps write to it; they are small slotted dataclasses, not frozen ones,
because a run creates them for every step while someone listens and a frozen dataclass costs
three times as much to make. Treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """Base class of every event.

    Extra keyword fields are kept and read like declared ones::

        ev = StartEvent(ids=[1, 2])
        ev.ids, ev["ids"], ev.get("missing", 0)
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True, defer_build=True)

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(f"{type(self).__name__} has no field {key!r}") from None

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when the event has no such field."""
        return getattr(self, key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and hasattr(self, key) and key in self.fields()

    def fields(self) -> dict[str, Any]:
        """Every field, declared and extra, by name (values are not copied)."""
        data = dict(self.__dict__)
        if self.__pydantic_extra__:
            data.update(self.__pydantic_extra__)
        return data


class StartEvent(Event):
    """The event a run starts with; ``run(**fields)`` builds it."""


class StopEvent(Event):
    """Returning it ends the run; ``await handler`` gives its ``result``.

    A subclass with fields of its own is returned whole instead.
    """

    result: Any = None


class InputRequiredEvent(Event):
    """A question for a human; the run waits until a ``HumanResponseEvent`` arrives."""

    prefix: str = ""


class HumanResponseEvent(Event):
    """A human's answer to an ``InputRequiredEvent``."""

    response: str = ""


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
    """A step invocation completed; ``produced`` holds the events it returned or sent."""

    run_id: str
    step: str
    event: Event
    produced: tuple[Event, ...] = ()
    duration: float = 0.0
    at: float = 0.0


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
