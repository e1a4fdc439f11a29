"""Reading a step's signature into its ``StepSpec``: the step's whole contract.

The annotation of the event parameter says which event types a step accepts (a union accepts
several, ``list[E]`` makes it a collect step, several event parameters a join), the return
annotation which types it produces, a ``Context`` parameter asks for the run's context and
``Annotated[T, Resource(factory)]`` parameters ask for injected resources.

This reader lives apart from ``step.py`` because it sits a layer higher: it has to know
``Context``, and the context (through ``RunState``) is built on the ``StepSpec`` that
``step.py`` defines. ``step.py`` keeps the plain data (``StepOptions``, ``StepSpec``) and the
decorator; the workflow class calls this reader when it is created.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from .collect import Collect
from .context import Context
from .events import Event, StopEvent
from .resources import Resource
from .step import CONTEXT, EVENT, GATHER, StepOptions, StepSpec


class StepSignatureError(Exception):
    """One problem with one step's signature (collected into a WorkflowValidationError)."""


class UnresolvedAnnotation(Exception):
    """An annotation names something not defined yet; read the signature again later."""


EventTypes = tuple[type[Event], ...]


@dataclasses.dataclass
class _Params:
    """What a step's parameters say, read one at a time (``_read_param``)."""

    kinds: list[tuple[str, str, Resource | None]] = dataclasses.field(default_factory=list)
    keyword_only: set[str] = dataclasses.field(default_factory=set)
    state_type: type[BaseModel] | None = None
    slots: list[tuple[str, EventTypes]] = dataclasses.field(default_factory=list)
    collect: Any = None


def read_signature(
    name: str,
    fn: Callable[..., Any],
    options: StepOptions,
    localns: dict[str, Any] | None = None,
    free: bool = False,
) -> StepSpec:
    """Build the ``StepSpec`` of ``fn``; raise ``StepSignatureError`` naming what is wrong."""
    try:
        hints = typing.get_type_hints(
            fn, globalns=getattr(fn, "__globals__", None), localns=localns, include_extras=True
        )
    except NameError as exc:
        raise UnresolvedAnnotation(f"step {name!r}: {exc}") from exc
    params = list(inspect.signature(fn).parameters.values())
    read = _Params()
    for p in params if free else params[1:]:  # a method's ``self`` is not a parameter here
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            _read_param(name, p, hints, localns, read)
    accepts, gather = _event_slots(name, read, options)
    produced, fans_out = _produced(name, hints)
    return StepSpec(
        name=name,
        fn=fn,
        accepts=accepts,
        produces=produced,
        is_async=inspect.iscoroutinefunction(fn),
        num_workers=options.num_workers,
        retry_policy=options.retry_policy,
        timeout=options.timeout,
        state_type=read.state_type,
        params=tuple(read.kinds),
        keyword_only=frozenset(read.keyword_only),
        accept_event_subclasses=options.accept_event_subclasses,
        skip_graph_checks=options.skip_graph_checks,
        free=free,
        gather=gather,
        collect=read.collect,
        fans_out=fans_out,
        replay=options.replay,
        cache=options.cache,
        cache_key=options.cache_key,
        executor=options.executor,
    )


def _read_param(
    name: str,
    p: inspect.Parameter,
    hints: dict[str, Any],
    localns: dict[str, Any] | None,
    read: _Params,
) -> None:
    """Read parameter ``p`` of step ``name`` into ``read``: a resource, the context, or an
    event parameter (one slot of the step's input)."""
    if p.name not in hints:
        raise StepSignatureError(
            f"step {name!r}: parameter {p.name!r} has no annotation; annotate it with the "
            f"event type it accepts (for example `{p.name}: StartEvent`), `Context`, "
            f"or `Annotated[T, Resource(factory)]`"
        )
    ann = hints[p.name]
    if p.kind is p.KEYWORD_ONLY:
        read.keyword_only.add(p.name)
    resource = _resource_of(ann)
    if resource is not None:
        if resource.localns is None and localns:
            resource.localns = localns  # for the factory's own postponed annotations
        read.kinds.append(("resource", p.name, resource))
        return
    if ann is Context or get_origin(ann) is Context:
        args = get_args(ann)
        if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            read.state_type = args[0]
        read.kinds.append((CONTEXT, p.name, None))
        return
    listed = _collect_of(name, p.name, ann)
    types_ = listed[0] if listed is not None else _event_types(ann)
    if types_ is None:
        if p.default is not p.empty:
            return  # an ordinary parameter with a default: left to its default
        raise StepSignatureError(
            f"step {name!r}: parameter {p.name!r} is annotated {_type_name(ann)}, which is "
            f"not an Event type, list[Event], Context or Annotated[..., Resource(...)]"
        )
    if None in types_:
        raise StepSignatureError(
            f"step {name!r}: the event parameter {p.name!r} cannot be Optional"
        )
    if (listed is not None or read.collect is not None) and read.slots:
        raise StepSignatureError(
            f"step {name!r}: a list[...] parameter must be the step's only event parameter "
            f"(it receives the members of a fan-out together)"
        )
    if listed is not None:
        read.collect = listed[1]
    read.slots.append((p.name, typing.cast(EventTypes, types_)))
    read.kinds.append((EVENT, p.name, None))


def _event_slots(
    name: str, read: _Params, options: StepOptions
) -> tuple[EventTypes, tuple[tuple[str, EventTypes], ...]]:
    """The event types step ``name`` accepts, and its slots when it gathers (several event
    parameters, a join, or one ``list[...]`` parameter): those parameters become ``GATHER``."""
    slots = read.slots
    if not slots:
        raise StepSignatureError(
            f"step {name!r} has no event parameter; add one annotated with the event type it "
            f"accepts, for example `ev: StartEvent`"
        )
    accepts = tuple(dict.fromkeys(t for _, types_ in slots for t in types_))
    gather: tuple[tuple[str, EventTypes], ...] = ()
    if len(slots) > 1 or read.collect is not None:
        gather = tuple(slots)
        read.kinds = [(GATHER if kind is EVENT else kind, n, r) for kind, n, r in read.kinds]
    if len(slots) > 1:
        for slot, types_ in slots:
            if len(types_) > 1:
                raise StepSignatureError(
                    f"step {name!r}: parameter {slot!r} of a step with several event parameters "
                    f"takes one event type, not a union; the step runs once one event of each "
                    f"parameter's type has arrived"
                )
        if options.accept_event_subclasses:
            raise StepSignatureError(
                f"step {name!r}: accept_event_subclasses=True is not available for a step with "
                f"several event parameters"
            )
    bad_accept = [t for t in accepts if issubclass(t, StopEvent)]
    if bad_accept:
        raise StepSignatureError(
            f"step {name!r} accepts {bad_accept[0].__name__}, but a StopEvent ends the run and "
            f"is never delivered to a step"
        )
    return accepts, gather


def _produced(name: str, hints: dict[str, Any]) -> tuple[EventTypes, bool]:
    """The event types step ``name`` declares it returns, and whether it returns a list."""
    if "return" not in hints:
        raise StepSignatureError(
            f"step {name!r} has no return annotation; declare the events it produces, for "
            f"example `-> StopEvent`, `-> A | B` or `-> None`"
        )
    produced = _event_types(hints["return"], lists=True)
    if produced is None:
        raise StepSignatureError(
            f"step {name!r} returns {_type_name(hints['return'])}; a step returns Event types, "
            f"a list of them, or None (for example `-> A | None` or `-> list[A]`)"
        )
    return tuple(t for t in produced if t is not None), _declares_list(hints["return"])


def _collect_of(step: str, param: str, ann: Any) -> tuple[tuple[Any, ...] | None, Any] | None:
    """For ``list[E]`` or ``Annotated[list[E], Collect(...)]``: (the element types, the
    ``Collect`` marker, ``Collect()`` when bare), else None (not a list parameter)."""
    marker = Collect()
    if get_origin(ann) is Annotated:
        found = [m for m in ann.__metadata__ if isinstance(m, Collect)]
        if not found:
            return None
        marker, ann = found[0], get_args(ann)[0]
        if get_origin(ann) is not list:
            raise StepSignatureError(
                f"step {step!r}: parameter {param!r} has Collect(...) on "
                f"{_type_name(ann)}; Collect marks a list[E] parameter"
            )
    if get_origin(ann) is not list or len(get_args(ann)) != 1:
        return None
    return _event_types(get_args(ann)[0]), marker


def _declares_list(ann: Any) -> bool:
    """The return annotation names ``list[...]``, alone or in a union."""
    origin = get_origin(ann)
    if origin is list:
        return True
    if origin is Union or origin is types.UnionType:
        return any(_declares_list(arg) for arg in get_args(ann))
    return False


def _resource_of(ann: Any) -> Resource | None:
    if get_origin(ann) is Annotated:
        for meta in ann.__metadata__:
            if isinstance(meta, Resource):
                setter = getattr(meta, "set_type_annotation", None)
                if setter is not None:  # ResourceConfig loads its file into the annotated model
                    setter(get_args(ann)[0])
                return meta
    return None


def _event_types(ann: Any, lists: bool = False) -> tuple[type[Event] | None, ...] | None:
    """The Event types (and None) an annotation names, or None if it names something else.
    With ``lists`` (a return annotation), ``list[A]`` names ``A``: such a step may return a
    list of events, each routed as if returned alone (a fan-out)."""
    if ann is None or ann is type(None):
        return (None,)
    origin = get_origin(ann)
    if lists and origin is list and len(get_args(ann)) == 1:
        return _event_types(get_args(ann)[0])
    if origin is Union or origin is types.UnionType:
        out: list[type[Event] | None] = []
        for arg in get_args(ann):
            sub = _event_types(arg, lists)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(dict.fromkeys(out))
    if isinstance(ann, type) and issubclass(ann, Event):
        return (ann,)
    return None


def _type_name(ann: Any) -> str:
    if get_args(ann):  # list[A], Annotated[...]: say it whole, not just "list"
        return repr(ann).replace("typing.", "")
    return getattr(ann, "__name__", None) or repr(ann)
