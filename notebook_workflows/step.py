"""``@step`` and the ``StepSpec`` a step's signature becomes.

``@step`` only records the options (``StepOptions``); the signature is read when the workflow
class is created (``_signature.read_signature`` builds the ``StepSpec``), so a mistake is
reported in the cell that defines the workflow, naming the step and the parameter. The reader
lives in its own module because it needs ``Context``, which is built on the ``StepSpec`` here:
this module stays below the context, plain data and the decorator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from .events import Event
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
    options = _options(
        num_workers,
        retry_policy,
        timeout,
        accept_event_subclasses,
        skip_graph_checks,
        replay,
        cache,
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


def _options(
    num_workers: int,
    retry_policy: RetryPolicy | None,
    timeout: float | None,
    accept_event_subclasses: bool,
    skip_graph_checks: list[str] | None,
    replay: bool,
    cache: bool,
    cache_key: Callable[[Any], Any] | None,
    executor: Any,
) -> StepOptions:
    """``@step``'s arguments, checked, as the ``StepOptions`` the step is marked with."""
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
    return StepOptions(
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
