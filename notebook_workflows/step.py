"""``@step`` and what a step's signature declares.

The signature is the step's whole contract: the annotation of its one event parameter says which
event types it accepts (a union accepts several), the return annotation which types it produces,
a ``Context`` parameter asks for the run's context and ``Annotated[T, Resource(factory)]``
parameters ask for injected resources. ``@step`` only records the options; the signature is read
when the workflow class is created (``StepSpec``), so a mistake is reported in the cell that
defines the workflow, naming the step and the parameter.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, overload

from pydantic import BaseModel

from .events import Event, StopEvent
from .resources import Resource
from .retry import RetryPolicy

F = TypeVar("F", bound=Callable[..., Any])

_STEP_ATTR = "__notebook_workflows_step__"


@dataclass(frozen=True)
class StepOptions:
    """What ``@step(...)`` was given."""

    num_workers: int = 1
    retry_policy: RetryPolicy | None = None
    timeout: float | None = None
    accept_event_subclasses: bool = False
    skip_graph_checks: tuple[str, ...] = ()
    replay: bool = True  # a rerun may replay its recorded outputs instead of calling it
    cache: bool = False  # ``run(cache=store)`` may reuse outputs recorded by earlier runs
    cache_key: Callable[[Any], Any] | None = None  # what of the input event counts as "same"
    executor: Any = None


# The kinds of a step parameter, in the order the function declares them. GATHER: one of the
# event parameters of a join (several event parameters, or one ``list[E]``), whose value the
# runtime hands over gathered (``events.Gathered``) instead of one event.
EVENT, CONTEXT, GATHER = "event", "context", "gather"


@dataclass(frozen=True)
class StepSpec:
    """A step as the runtime sees it: what it accepts and produces and how to call it."""

    name: str
    fn: Callable[..., Any]
    accepts: tuple[type[Event], ...]
    produces: tuple[type[Event], ...]
    is_async: bool
    num_workers: int = 1
    retry_policy: RetryPolicy | None = None
    timeout: float | None = None
    state_type: type[BaseModel] | None = None
    # (kind, name, resource): kind is EVENT, CONTEXT or "resource"; keyword-only ones last.
    params: tuple[tuple[str, str, Resource | None], ...] = ()
    keyword_only: frozenset[str] = field(default_factory=frozenset)
    accept_event_subclasses: bool = False  # also take events of subclasses of ``accepts``
    skip_graph_checks: tuple[str, ...] = ()  # "reachability", "dead_end": checks not made
    free: bool = False  # a function outside the class (``add_step``): called without self
    # a ``@catch_error`` handler: the steps it covers (None: every step no other handler names)
    catches: bool = False
    catch_for: tuple[str, ...] | None = None
    max_recoveries: int = 1
    # A join (see ``collect``): its event parameters as ``(name, accepted types)``, in order.
    # Several parameters: it runs once one event of each has arrived. One ``list[E]``
    # parameter (``collect`` is its ``Collect`` marker): it runs with the members of a fan-out.
    gather: tuple[tuple[str, tuple[type[Event], ...]], ...] = ()
    collect: Any = None
    fans_out: bool = False  # its return annotation declares ``list[E]``: a list return fans out
    # rerun and cache (``runtime.replay``): see ``@step``
    replay: bool = True
    cache: bool = False
    cache_key: Callable[[Any], Any] | None = None
    # a sync step's own ``concurrent.futures.Executor`` (None: the run's, else a thread pool)
    executor: Any = None

    @property
    def resources(self) -> tuple[tuple[str, Resource], ...]:
        return tuple((name, res) for kind, name, res in self.params if res is not None)

    def signature_text(self) -> str:
        """``name(ev: A | B) -> C | None``: how the step reads in errors and graphs."""
        out = " | ".join(t.__name__ for t in self.produces) or "None"
        if self.fans_out:
            out = f"list[{out}]"
        return f"{self.name}({self.inputs_text()}) -> {out}"

    def inputs_text(self) -> str:
        """``ev: A | B``, ``a: A, b: B`` or ``evs: list[A]``: the step's event parameters."""
        if not self.gather:
            return "ev: " + " | ".join(t.__name__ for t in self.accepts)
        shown = []
        for name, types_ in self.gather:
            text = " | ".join(t.__name__ for t in types_)
            shown.append(f"{name}: list[{text}]" if self.collect is not None else f"{name}: {text}")
        return ", ".join(shown)


@overload
def step(fn: F, /) -> F: ...
@overload
def step(
    *,
    workflow: type[Any] | None = None,
    num_workers: int = 1,
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
    accept_event_subclasses: bool = False,
    skip_graph_checks: list[str] | None = None,
    replay: bool = True,
    cache: bool = False,
    cache_key: Callable[[Any], Any] | None = None,
    executor: Any = None,
) -> Callable[[F], F]: ...


def step(
    fn: F | None = None,
    /,
    *,
    workflow: type[Any] | None = None,
    num_workers: int = 1,
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
    accept_event_subclasses: bool = False,
    skip_graph_checks: list[str] | None = None,
    replay: bool = True,
    cache: bool = False,
    cache_key: Callable[[Any], Any] | None = None,
    executor: Any = None,
) -> Any:
    """Mark a workflow method as a step.

    ``num_workers`` is how many events this step may process at once; ``retry_policy`` decides
    whether a failing invocation is tried again; ``timeout`` bounds one invocation in seconds.
    ``accept_event_subclasses=True`` also routes events of subclasses of the accepted types to
    the step. ``skip_graph_checks`` (``["reachability"]``, ``["dead_end"]``) leaves this step
    out of those checks of ``validate()``. ``workflow=SomeWorkflow`` adds a function defined
    outside the class to that workflow (``SomeWorkflow.add_step``). ``executor`` (a
    ``concurrent.futures.Executor``) runs this sync step there rather than on the run's
    executor (see ``Workflow``); an async step always runs on the run's event loop.

    ``replay=False`` makes the step run for real in every ``rerun`` (a notification, say);
    ``cache=True`` lets ``run(cache=store)`` reuse what an earlier run of the same code recorded
    for the same input event, and ``cache_key(event)`` names what of the input counts (events
    with equal keys count as the same input).
    """
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive integer, got {num_workers!r}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if retry_policy is not None and not callable(getattr(retry_policy, "next", None)):
        raise TypeError(
            f"retry_policy must have a next(elapsed_time, attempts, error) method, "
            f"got {retry_policy!r}"
        )
    check_executor(executor, "@step(executor=...)")
    checks = tuple(skip_graph_checks or ())
    unknown = [c for c in checks if c not in GRAPH_CHECKS]
    if unknown:
        raise ValueError(
            f"skip_graph_checks takes {', '.join(map(repr, GRAPH_CHECKS))}, got {unknown[0]!r}"
        )
    if cache_key is not None and not callable(cache_key):
        raise TypeError(f"cache_key must be a function of the input event, got {cache_key!r}")
    options = StepOptions(
        num_workers,
        retry_policy,
        timeout,
        bool(accept_event_subclasses),
        checks,
        bool(replay),
        bool(cache or cache_key is not None),
        cache_key,
        executor,
    )

    def mark(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@step decorates functions, got {func!r}")
        setattr(func, _STEP_ATTR, options)
        if workflow is not None:
            workflow.add_step(func)
        return func

    return mark(fn) if fn is not None else mark


def check_executor(executor: Any, where: str) -> None:
    """Refuse, naming ``where``, anything that is neither None nor an executor."""
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"{where} takes a concurrent.futures.Executor (a ThreadPoolExecutor, a "
            f"ProcessPoolExecutor, Dask's client.get_executor(), ...), got {executor!r}"
        )


def step_options(obj: Any) -> StepOptions | None:
    """The options of a function marked with ``@step``, or None."""
    return getattr(obj, _STEP_ATTR, None)


GRAPH_CHECKS = ("reachability", "dead_end")


class StepSignatureError(Exception):
    """One problem with one step's signature (collected into a WorkflowValidationError)."""


class UnresolvedAnnotation(Exception):
    """An annotation names something not defined yet; read the signature again later."""


def read_signature(
    name: str,
    fn: Callable[..., Any],
    options: StepOptions,
    localns: dict[str, Any] | None = None,
    free: bool = False,
) -> StepSpec:
    """Build the ``StepSpec`` of ``fn``; raise ``StepSignatureError`` naming what is wrong."""
    from .context import Context  # context imports nothing from here; kept local for clarity

    try:
        hints = typing.get_type_hints(
            fn, globalns=getattr(fn, "__globals__", None), localns=localns, include_extras=True
        )
    except NameError as exc:
        raise UnresolvedAnnotation(f"step {name!r}: {exc}") from exc

    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if not free:
        params = params[1:]  # skip self
    kinds: list[tuple[str, str, Resource | None]] = []
    keyword_only: set[str] = set()
    accepts: tuple[type[Event], ...] | None = None
    state_type: type[BaseModel] | None = None
    slots: list[tuple[str, tuple[type[Event], ...]]] = []
    collect: Any = None
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name not in hints:
            raise StepSignatureError(
                f"step {name!r}: parameter {p.name!r} has no annotation; annotate it with the "
                f"event type it accepts (for example `{p.name}: StartEvent`), `Context`, "
                f"or `Annotated[T, Resource(factory)]`"
            )
        ann = hints[p.name]
        if p.kind is p.KEYWORD_ONLY:
            keyword_only.add(p.name)
        resource = _resource_of(ann)
        if resource is not None:
            if resource.localns is None and localns:
                resource.localns = localns  # for the factory's own postponed annotations
            kinds.append(("resource", p.name, resource))
            continue
        if ann is Context or get_origin(ann) is Context:
            args = get_args(ann)
            if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
                state_type = args[0]
            kinds.append((CONTEXT, p.name, None))
            continue
        listed = _collect_of(name, p.name, ann)
        types_ = listed[0] if listed is not None else _event_types(ann)
        if types_ is None:
            if p.default is not p.empty:
                continue  # an ordinary parameter with a default: left to its default
            raise StepSignatureError(
                f"step {name!r}: parameter {p.name!r} is annotated {_type_name(ann)}, which is "
                f"not an Event type, list[Event], Context or Annotated[..., Resource(...)]"
            )
        if None in types_:
            raise StepSignatureError(
                f"step {name!r}: the event parameter {p.name!r} cannot be Optional"
            )
        if (listed is not None or collect is not None) and slots:
            raise StepSignatureError(
                f"step {name!r}: a list[...] parameter must be the step's only event parameter "
                f"(it receives the members of a fan-out together)"
            )
        if listed is not None:
            collect = listed[1]
        slots.append((p.name, typing.cast(tuple[type[Event], ...], types_)))
        kinds.append((EVENT, p.name, None))
    if slots:
        accepts = tuple(dict.fromkeys(t for _, types_ in slots for t in types_))
    gather: tuple[tuple[str, tuple[type[Event], ...]], ...] = ()
    if len(slots) > 1 or collect is not None:
        gather = tuple(slots)
        kinds = [(GATHER if kind is EVENT else kind, n, r) for kind, n, r in kinds]
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
    if accepts is None:
        raise StepSignatureError(
            f"step {name!r} has no event parameter; add one annotated with the event type it "
            f"accepts, for example `ev: StartEvent`"
        )
    bad_accept = [t for t in accepts if issubclass(t, StopEvent)]
    if bad_accept:
        raise StepSignatureError(
            f"step {name!r} accepts {bad_accept[0].__name__}, but a StopEvent ends the run and "
            f"is never delivered to a step"
        )
    if "return" not in hints:
        raise StepSignatureError(
            f"step {name!r} has no return annotation; declare the events it produces, for "
            f"example `-> StopEvent`, `-> A | B` or `-> None`"
        )
    produced = _event_types(hints["return"], lists=True)
    fans_out = _declares_list(hints["return"])
    if produced is None:
        raise StepSignatureError(
            f"step {name!r} returns {_type_name(hints['return'])}; a step returns Event types, "
            f"a list of them, or None (for example `-> A | None` or `-> list[A]`)"
        )
    return StepSpec(
        name=name,
        fn=fn,
        accepts=accepts,
        produces=tuple(t for t in produced if t is not None),
        is_async=inspect.iscoroutinefunction(fn),
        num_workers=options.num_workers,
        retry_policy=options.retry_policy,
        timeout=options.timeout,
        state_type=state_type,
        params=tuple(kinds),
        keyword_only=frozenset(keyword_only),
        accept_event_subclasses=options.accept_event_subclasses,
        skip_graph_checks=options.skip_graph_checks,
        free=free,
        gather=gather,
        collect=collect,
        fans_out=fans_out,
        replay=options.replay,
        cache=options.cache,
        cache_key=options.cache_key,
        executor=options.executor,
    )


def _collect_of(step: str, param: str, ann: Any) -> tuple[tuple[Any, ...] | None, Any] | None:
    """For ``list[E]`` or ``Annotated[list[E], Collect(...)]``: (the element types, the
    ``Collect`` marker, ``Collect()`` when bare), else None (not a list parameter)."""
    from .collect import Collect  # plain data; imported here to keep step.py's imports light

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


@dataclass(frozen=True)
class StepConfig:
    """A step's configuration under the name llama-index-workflows gives it
    (``workflows.decorators.StepConfig``): built from the ``StepSpec`` by ``of``."""

    accepted_events: list[Any]
    event_name: str
    return_types: list[Any]
    context_parameter: str | None
    num_workers: int
    retry_policy: Any
    resources: list[Any]
    context_state_type: type[BaseModel] | None = None

    @classmethod
    def of(cls, spec: StepSpec) -> StepConfig:
        context = next((name for kind, name, _ in spec.params if kind == CONTEXT), None)
        event = next((name for kind, name, _ in spec.params if kind in (EVENT, GATHER)), "ev")
        return cls(
            accepted_events=list(spec.accepts),
            event_name=event,
            return_types=list(spec.produces),
            context_parameter=context,
            num_workers=spec.num_workers,
            retry_policy=spec.retry_policy,
            resources=[resource for _, resource in spec.resources],
            context_state_type=spec.state_type,
        )
