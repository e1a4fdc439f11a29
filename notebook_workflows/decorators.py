"""The decorators under llama-index-workflows' module path (``workflows.decorators``).

``step`` is this project's ``@step`` (``notebook_workflows.step``), re-exported. ``catch_error``
marks a method as the handler of steps that have failed for good; like ``@step`` it only
records its options on the function, and the runtime reads them with ``catch_error_options``.

What the runtime does with a handler (the peer's behaviour, which it is to follow): when a step
fails and its retry policy gives up, the run does not fail; the handler that covers the step
runs instead, with a ``StepFailedEvent`` (the step's name, its input event, the exception, the
attempts, the time since the first attempt, when it failed). Whatever the handler returns is
routed like any step's output: a ``StopEvent`` ends the run successfully, another event carries
on. If the handler raises, the run fails with that error. Which handler covers a step: the one
whose ``for_steps`` names it, else the wildcard handler (``for_steps=None``), if any. Each
handler runs at most ``max_recoveries`` times along one line of events (an event, the events
produced from it, and so on); once that is spent, a further failure fails the run. A handler
runs with one worker and no retry policy, and never handles its own failure.

Rules checked when the workflow class is validated: at most one wildcard handler; every name
in ``for_steps`` is a step of the workflow, and not a handler; no step claimed by two handlers.
Checked here, at decoration: ``max_recoveries`` is an integer >= 1, ``for_steps`` is ``None``
or a list of step names, and the handler's event parameter accepts ``StepFailedEvent``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from .errors import WorkflowValidationError
from .events import StepFailedEvent
from .step import step

F = TypeVar("F", bound=Callable[..., Any])

_CATCH_ERROR_ATTR = "__notebook_workflows_catch_error__"


@dataclass(frozen=True)
class CatchErrorOptions:
    """What ``@catch_error(...)`` was given: ``for_steps`` (step names, or ``None`` for every
    step no other handler claims) and ``max_recoveries`` (runs allowed per line of events)."""

    for_steps: tuple[str, ...] | None = None
    max_recoveries: int = 1


@overload
def catch_error(fn: F, /) -> F: ...
@overload
def catch_error(
    *, for_steps: list[str] | None = None, max_recoveries: int = 1
) -> Callable[[F], F]: ...


def catch_error(
    fn: F | None = None,
    /,
    *,
    for_steps: list[str] | None = None,
    max_recoveries: int = 1,
) -> Any:
    """Mark a workflow method as the handler of steps that fail for good::

        @catch_error(for_steps=["fetch"], max_recoveries=2)
        async def fetch_failed(self, ev: StepFailedEvent) -> Fallback: ...

    ``for_steps`` lists the steps it covers (``None``: every step no other handler names);
    ``max_recoveries`` how many times it may run along one line of events before a failure
    fails the run. See the module docstring for what the runtime does with it.
    """
    if isinstance(max_recoveries, bool) or not isinstance(max_recoveries, int):
        raise WorkflowValidationError(
            f"@catch_error max_recoveries must be an integer >= 1, got {max_recoveries!r}"
        )
    if max_recoveries < 1:
        raise WorkflowValidationError(
            f"@catch_error max_recoveries must be an integer >= 1, got {max_recoveries}"
        )
    if for_steps is not None and (
        not isinstance(for_steps, list | tuple) or not all(isinstance(s, str) for s in for_steps)
    ):
        raise WorkflowValidationError(
            f"@catch_error for_steps must be None or a list of step names, got {for_steps!r}"
        )
    options = CatchErrorOptions(tuple(for_steps) if for_steps is not None else None, max_recoveries)

    def mark(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@catch_error decorates functions, got {func!r}")
        _check_accepts_step_failed(func)
        setattr(func, _CATCH_ERROR_ATTR, options)
        return func

    return mark(fn) if fn is not None else mark


def catch_error_options(obj: Any) -> CatchErrorOptions | None:
    """The options of a function marked with ``@catch_error``, or ``None``."""
    return getattr(obj, _CATCH_ERROR_ATTR, None)


def _check_accepts_step_failed(func: Callable[..., Any]) -> None:
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        return  # names defined later (a notebook): the workflow's validation checks it then
    hints.pop("return", None)
    accepted = [t for hint in hints.values() for t in _members(hint)]
    if StepFailedEvent not in accepted:
        raise WorkflowValidationError(
            f"@catch_error handler {func.__qualname__!r} must take the failure as a parameter "
            f"annotated StepFailedEvent (from notebook_workflows.events), for example "
            f"`ev: StepFailedEvent`"
        )


def _members(hint: Any) -> tuple[Any, ...]:
    args = typing.get_args(hint)
    return args if args and typing.get_origin(hint) is not typing.Annotated else (hint,)


__all__ = ["CatchErrorOptions", "catch_error", "catch_error_options", "step"]
