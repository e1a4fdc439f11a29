"""Reading steps from the outside, under the names llama-index-workflows gives them
(``workflows.utils``): tools that draw or inspect a workflow call these.

They answer from the same ``StepSpec`` the runtime uses (``_signature.read_signature``), so what
they report is what runs.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._signature import StepSignatureError, read_signature
from .errors import WorkflowValidationError
from .step import CONTEXT, EVENT, GATHER, StepOptions
from .step import step_options as _options

# How often the peer's runtime polls while it waits; kept as a name for code that imports it.
BUSY_WAIT_DELAY = 0.01


class StepSignatureSpec(BaseModel):
    """What a step's signature declares: its event parameters and their types, what it
    returns, its context parameter and typed state, and the resources it asks for."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    accepted_events: dict[str, list[Any]]
    return_types: list[Any]
    context_parameter: str | None = None
    context_state_type: Any | None = None
    resources: list[Any] = []


def inspect_signature(fn: Callable[..., Any], localns: dict[str, Any] | None = None) -> Any:
    """The ``StepSignatureSpec`` of ``fn`` (a method with ``self`` or a free function)."""
    params = list(inspect.signature(fn).parameters)
    free = not params or params[0] != "self"
    options = _options(fn) or StepOptions()
    try:
        spec = read_signature(getattr(fn, "__name__", "step"), fn, options, localns, free)
    except StepSignatureError as error:
        raise WorkflowValidationError(str(error)) from None
    accepted: dict[str, list[Any]] = {}
    context = None
    for kind, name, _resource in spec.params:
        if kind == CONTEXT:
            context = name
        elif kind == EVENT:
            accepted[name] = list(spec.accepts)
        elif kind == GATHER:
            accepted[name] = list(dict(spec.gather).get(name, spec.accepts))
    return StepSignatureSpec(
        accepted_events=accepted,
        return_types=list(spec.produces) or [type(None)],
        context_parameter=context,
        context_state_type=spec.state_type,
        resources=[resource for _, resource in spec.resources],
    )


def validate_step_signature(spec: StepSignatureSpec) -> None:
    """Raise ``WorkflowValidationError`` for a signature no step can have."""
    if not spec.accepted_events:
        raise WorkflowValidationError(
            "step signature must have at least one parameter of an event type"
        )
    if not spec.return_types:
        raise WorkflowValidationError("return types annotations are missing")


def get_steps_from_class(cls: object) -> dict[str, Callable[..., Any]]:
    """The functions of ``cls`` marked with ``@step``, by name."""
    members = inspect.getmembers(cls, predicate=inspect.isfunction)
    return {name: fn for name, fn in members if _options(fn) is not None}


def get_steps_from_instance(workflow: object) -> dict[str, Callable[..., Any]]:
    """The bound methods of ``workflow`` marked with ``@step``, by name."""
    members = inspect.getmembers(workflow, predicate=inspect.ismethod)
    return {name: fn for name, fn in members if _options(fn) is not None}


def is_free_function(qualname: str) -> bool:
    """Whether a qualified name (PEP 3155) is a module-level or nested function, not a
    method: ``f`` and ``outer.<locals>.f`` are, ``Flow.f`` is not."""
    if not qualname:
        raise ValueError("The qualified name cannot be empty")
    parts = qualname.split(".")
    return len(parts) == 1 or (len(parts) > 1 and parts[-2] == "<locals>")


def _get_param_types(param: inspect.Parameter, type_hints: dict[str, Any]) -> list[Any]:
    """The types a parameter's annotation allows, ``None`` left out of a union."""
    hint = type_hints.get(param.name, param.annotation)
    if hint is inspect.Parameter.empty:
        return [Any]
    if typing.get_origin(hint) in (typing.Union, _UnionType):
        return [t for t in typing.get_args(hint) if t is not type(None)]
    return [hint]


def _get_return_types(func: Callable[..., Any], localns: dict[str, Any] | None = None) -> list[Any]:
    """The event types ``func`` is annotated to return (``[NoneType]`` for ``-> None``)."""
    return inspect_signature(func, localns).return_types


_UnionType = type(int | str)
