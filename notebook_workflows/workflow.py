"""Workflow: a class whose ``@step`` methods form a graph of typed events.

The graph is read from the class once, when it is defined: every step's signature (what it
accepts and produces) and the checks that the whole can run (an entry, an exit, nothing produced
that nobody takes). ``run`` starts a run on the running event loop and returns its handler at
once; ``run_sync`` is the same run for plain synchronous code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ._frames import for_people
from ._loop import in_notebook_kernel
from ._ports import DURABILITY, durable, notebook_face
from ._run_ids import check_run_id, new_run_id
from ._settings import settings
from ._signature import StepSignatureError, UnresolvedAnnotation, read_signature
from .context import Context
from .decorators import catch_error_options
from .errors import ContextStateError, WorkflowRuntimeError, WorkflowValidationError
from .events import (
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
)
from .handler import WorkflowHandler
from .resources import ResourceCache, ResourceConfig, check_acyclic
from .runtime import routing
from .runtime.state import RunState
from .start import build_start_event, check_same_start
from .step import StepOptions, StepSpec, check_executor, step, step_options
from .validation import CHECK_OF, graph_problems

if TYPE_CHECKING:
    from .checkpoint.debug import StepCall
    from .graph import WorkflowGraph


class WorkflowMeta(type):
    """The metaclass of ``Workflow``: a class of its own so that a class may combine it with
    another metaclass (LlamaIndex's agents are workflows and pydantic models at once, under
    ``class Meta(WorkflowMeta, ModelMetaclass)``). Reading the steps happens in
    ``Workflow.__init_subclass__``, which every metaclass runs.

    A class reads its steps once; replacing or removing one on the class afterwards
    (``Report.render = fixed_render``, a fix made in a notebook cell) makes this class and its
    subclasses read them again, so the next run, resume or graph uses the step as it is now."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if not name.startswith("_nw_"):
            _steps_changed(cls, name)

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        _steps_changed(cls, name)


def _steps_changed(cls: type, name: str) -> None:
    """Forget the steps ``cls`` and its subclasses read, if ``name`` was or is one of them."""
    specs = cls.__dict__.get("_nw_specs")
    now = getattr(cls, name, None)
    if (
        specs is None
        or name in specs
        or step_options(now) is not None
        or catch_error_options(now) is not None
    ):
        stack = [cls]
        while stack:
            klass = stack.pop()
            if "_nw_specs" in klass.__dict__:
                type.__setattr__(klass, "_nw_specs", None)
                type.__setattr__(klass, "_nw_problems", None)
            stack.extend(klass.__subclasses__())


class Workflow(metaclass=WorkflowMeta):
    """Subclass it and mark methods with ``@step``.

    ``timeout`` is the wall-clock budget of one run in seconds (``None``, the default, for
    none); time spent waiting for a human never counts. ``checkpoint`` is a snapshot store that
    every run of this workflow saves to (see ``notebook_workflows.checkpoint``). ``executor``
    (a ``concurrent.futures.Executor``) runs its sync steps, unless a run or a step names its
    own: a thread pool by default; a ``ProcessPoolExecutor`` or Dask's
    ``client.get_executor()`` runs them in other processes (see ``notebook_workflows.remote``).
    ``serializer`` (``JsonSerializer()``, the default, or ``PickleSerializer()``) is what
    ``ctx.to_dict()`` uses when not told. ``service_manager`` is accepted for code written for
    llama-index-workflows (LlamaIndex's agents pass it on); this engine has no services.
    Subclasses may define ``__init__`` and keep data on ``self``; calling
    ``super().__init__()`` is optional.
    """

    # Defaults of the settings ``__init__`` writes to the instance. Not annotated: a workflow
    # that is also a pydantic model (LlamaIndex's agents) would take annotated names for
    # fields of its own, and dump them with ``model_dump()``.
    timeout = None  # float | None
    verbose = False
    checkpoint = None  # a snapshot store
    executor = None  # a concurrent.futures.Executor
    serializer = None  # a serializer object

    disable_validation = False
    num_concurrent_runs = None  # int | None

    _nw_specs: ClassVar[dict[str, StepSpec] | None] = None
    _nw_localns: ClassVar[dict[str, Any] | None] = None
    _nw_problems: ClassVar[list[str] | None] = None
    _nw_added: ClassVar[dict[str, Any]]  # set on each subclass: the steps added to it

    def __init__(
        self,
        timeout: float | None = None,
        verbose: bool = False,
        checkpoint: Any = None,
        *,
        disable_validation: bool = False,
        skip_graph_checks: Any = (),
        workflow_name: str | None = None,
        num_concurrent_runs: int | None = None,
        resource_manager: Any = None,
        executor: Any = None,
        service_manager: Any = None,
        serializer: Any = None,
    ) -> None:
        check_executor(executor, "Workflow(executor=...)")
        if timeout is not None and not timeout > 0:
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        if num_concurrent_runs is not None and (
            isinstance(num_concurrent_runs, bool)
            or not isinstance(num_concurrent_runs, int)
            or num_concurrent_runs < 1
        ):
            raise ValueError(
                f"num_concurrent_runs must be a positive integer or None, got "
                f"{num_concurrent_runs!r}"
            )
        unknown = set(skip_graph_checks or ()) - set(CHECK_OF)
        if unknown:
            raise ValueError(
                f"skip_graph_checks takes {', '.join(map(repr, CHECK_OF))}, got {unknown}"
            )
        # Written to the instance's __dict__ directly: a workflow that is also a pydantic
        # model (LlamaIndex's agents) refuses attributes that are not its fields.
        settings = self.__dict__
        settings["timeout"] = timeout
        settings["verbose"] = verbose
        settings["checkpoint"] = checkpoint
        settings["executor"] = executor
        settings["disable_validation"] = disable_validation
        settings["skip_graph_checks"] = frozenset(skip_graph_checks or ())
        settings["num_concurrent_runs"] = num_concurrent_runs
        settings["serializer"] = serializer
        if workflow_name:
            settings["workflow_name"] = workflow_name
        if resource_manager is not None:
            settings["_nw_resources"] = resource_manager
        if not disable_validation:
            try:
                self._refuse_endless()
            except WorkflowValidationError as error:  # the user's line, not ours
                raise for_people(error) from None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Annotations may name classes local to the function that defines the workflow (a test,
        # a notebook helper): keep that namespace to resolve them.
        frame = _defining_frame(sys._getframe(1))
        cls._nw_localns = dict(frame.f_locals) if frame.f_code.co_name != "<module>" else None
        cls._nw_specs = None
        cls._nw_problems = None
        cls._nw_added = {}
        try:
            cls._step_specs()
        except WorkflowValidationError as exc:
            if not all("is not defined" in problem for problem in exc.problems):
                raise
            cls._nw_specs = None  # an event class defined later: read them again at first use

    @property
    def workflow_name(self) -> str:
        """``Workflow(workflow_name=...)``, else ``module.QualifiedName`` of the class."""
        return (
            self.__dict__.get("workflow_name")
            or f"{type(self).__module__}.{type(self).__qualname__}"
        )

    @workflow_name.setter
    def workflow_name(self, name: str) -> None:
        self.__dict__["workflow_name"] = name

    @classmethod
    def add_step(cls, func: Any) -> None:
        """Add ``func``, a function marked with ``@step`` and defined outside the class, as a
        step of this workflow (and of its subclasses). A function whose first parameter is
        ``self`` gets the workflow instance, like a method; any other is called without it.
        ``@step(workflow=cls)`` does the same."""
        options = step_options(func)
        if options is None:
            func = step(func)
        name = getattr(func, "__name__", None)
        if not name:
            raise TypeError(f"add_step takes a function, got {func!r}")
        if name in cls._step_specs_names():
            raise WorkflowValidationError(
                f"step {name!r} already exists in {cls.__qualname__}", cls.__qualname__
            )
        cls.__dict__["_nw_added"][name] = func
        for klass in (cls, *cls.__subclasses__()):
            klass._nw_specs = None
            klass._nw_problems = None

    @classmethod
    def _step_specs_names(cls) -> set[str]:
        names = {n for k in cls.__mro__ for n, a in vars(k).items() if step_options(a)}
        return names | {n for k in cls.__mro__ for n in vars(k).get("_nw_added", {})}

    # -- the graph ------------------------------------------------------------------------------

    @classmethod
    def _step_specs(cls) -> dict[str, StepSpec]:
        """Every step of the class, by name, in definition order."""
        specs = cls.__dict__.get("_nw_specs")
        if specs is not None:
            return specs
        found: dict[str, tuple[Any, Any, bool]] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                options = step_options(attr)
                if options is None and catch_error_options(attr) is not None:
                    options = StepOptions()  # a handler runs with one worker, no retries
                if options is not None:
                    found[name] = (attr, options, False)
                elif name in found:
                    del found[name]  # overridden by something that is not a step
            for name, fn in vars(klass).get("_nw_added", {}).items():
                params = list(inspect.signature(fn).parameters)
                found[name] = (fn, step_options(fn), not params or params[0] != "self")
        localns = {**(cls._nw_localns or {}), cls.__name__: cls}
        problems: list[str] = []
        specs = {}
        for name, (fn, options, free) in found.items():
            try:
                spec = read_signature(name, fn, options, localns, free)
                catching = catch_error_options(fn)
                if catching is not None:
                    spec = dataclasses.replace(
                        spec,
                        catches=True,
                        catch_for=catching.for_steps,
                        max_recoveries=catching.max_recoveries,
                        num_workers=1,
                        retry_policy=None,
                    )
                specs[name] = spec
            except StepSignatureError as exc:
                problems.append(str(exc))
            except UnresolvedAnnotation as exc:
                problems.append(
                    f"{exc}: define it before the workflow runs (annotations are read when "
                    f"the class is created, and again at the first run)"
                )
        if problems:
            raise WorkflowValidationError(problems, cls.__qualname__)
        cls._nw_specs = specs
        return specs

    @classmethod
    def _state_type(cls) -> type[BaseModel] | None:
        """The typed state the steps declare (``Context[MyState]``): one model, or models of
        one line of inheritance (a subclass workflow's child state), of which the most
        derived is the run's."""
        types_ = {s.state_type for s in cls._step_specs().values() if s.state_type is not None}
        if not types_:
            return None
        derived = [t for t in types_ if all(issubclass(t, other) for other in types_)]
        if not derived:
            names = ", ".join(sorted(t.__name__ for t in types_))
            raise WorkflowValidationError(
                f"steps declare different typed states ({names}); use one Context[State], "
                f"or models where one derives from the others",
                cls.__qualname__,
            )
        return derived[0]

    @classmethod
    def _start_event_type(cls) -> type[StartEvent]:
        for spec in cls._step_specs().values():
            for typ in spec.accepts:
                if issubclass(typ, StartEvent):
                    return typ
        return StartEvent

    @classmethod
    def _graph_problems(cls) -> list[str]:
        cached = cls.__dict__.get("_nw_problems")
        if cached is not None:
            return cached
        problems = graph_problems(cls._step_specs())
        try:
            cls._state_type()
        except WorkflowValidationError as exc:
            problems.extend(exc.problems)
        cls._nw_problems = problems
        return problems

    skip_graph_checks = frozenset[str]()  # not annotated, as above

    def validate(
        self, *, validate_resource_configs: bool = True, validate_resources: bool = False
    ) -> bool:
        """Raise ``WorkflowValidationError`` listing every problem of the workflow, if any;
        return whether it asks a human (a step returns an ``InputRequiredEvent`` or takes a
        ``HumanResponseEvent``), as the peer's ``validate`` does.

        ``Workflow(skip_graph_checks={"reachability", "dead_end", "terminal_event"})`` leaves
        those graph checks out: steps nothing feeds, events nobody takes, no ``StopEvent``.
        ``validate_resource_configs`` (the default) also loads each ``ResourceConfig`` file
        into its model, so a missing file or a bad value is a problem now, named with its
        step; ``validate_resources=True`` also calls each resource factory once (its value
        is dropped), so a factory that fails is a problem now. ``run`` checks the graph
        only."""
        problems = self._graph_problems_kept()
        if validate_resource_configs or validate_resources:
            problems += self._resource_problems(
                configs=validate_resource_configs, factories=validate_resources
            )
        if problems:
            raise WorkflowValidationError(problems, type(self).__qualname__)
        return type(self)._asks_humans()

    def _check_graph(self) -> None:
        """What ``run`` checks before it starts: the graph's problems, if any."""
        problems = self._graph_problems_kept()
        if problems:
            raise WorkflowValidationError(problems, type(self).__qualname__)

    def _graph_problems_kept(self) -> list[str]:
        problems = type(self)._graph_problems()
        if self.skip_graph_checks:
            skipped = [CHECK_OF[c] for c in self.skip_graph_checks if c in CHECK_OF]
            problems = [p for p in problems if not any(c in p for c in skipped)]
        return list(problems)

    def _resource_problems(self, *, configs: bool, factories: bool) -> list[str]:
        """Each resource that could not be had: a config file that does not load, a cycle of
        factories, a factory that fails (``factories``: each is called once, on a manager of
        its own, and what it made is dropped)."""
        from ._loop import run_blocking

        problems = []
        for name, spec in type(self)._step_specs().items():
            for param, resource in spec.resources:
                try:
                    check_acyclic(resource, ())
                    if configs and isinstance(resource, ResourceConfig):
                        resource._read()
                    elif factories and not isinstance(resource, ResourceConfig):
                        run_blocking(functools.partial(ResourceCache().get, resource))
                except Exception as error:
                    problems.append(f"step {name!r}, resource {param!r}: {error}")
        return problems

    def _refuse_endless(self) -> None:
        """At construction, as the peer does: a graph with no step that takes the StartEvent
        or none that returns a StopEvent can never run, so the workflow is refused now, with
        every problem of its graph. A graph whose only problems are steps nothing feeds or
        events nobody takes is refused by ``validate`` and ``run``."""
        checks = ("nowhere to begin", CHECK_OF["terminal_event"])
        problems = self._graph_problems_kept()
        if any(c in p for p in problems for c in checks):  # then every problem, said together
            raise WorkflowValidationError(problems, type(self).__qualname__)

    # -- running --------------------------------------------------------------------------------

    def run(
        self,
        ctx: Context[Any] | None = None,
        *,
        stepwise: bool = False,
        run_id: str | None = None,
        checkpoint: Any = None,
        durability: str = "sync",
        start_event: StartEvent | None = None,
        cache: Any = None,
        executor: Any = None,
        progress: bool | None = None,
        **fields: Any,
    ) -> WorkflowHandler:
        """Start a run on the running event loop and return its handler at once.

        ``fields`` build the ``StartEvent``. With ``ctx`` from an earlier run the run continues
        it: an unfinished run (restored, failed or cancelled) goes on from where it stopped; a
        finished one starts anew with its store kept. ``stepwise=True`` runs nothing until
        ``await handler.step()``. ``durability`` says when a checkpointed run writes (always
        from a thread of the run, never on the event loop): ``"sync"`` a record for every step
        (the default; a crash may lose the last two steps' records), ``"async"`` steps in quick
        succession sharing a record (a crash may lose fewer than 32 steps, never the store),
        ``"exit"`` only when the run pauses, fails or ends. ``ctx.once`` results, pauses and
        the end are in the store before the run goes on, in every mode. ``executor`` runs this
        run's sync steps (those without an executor of their own), in place of the
        workflow's. ``cache=store``: see ``checkpoint.rerun``.

        Awaited in a notebook cell, a run that takes longer than about half a second shows
        one line of status above the cell's result while it runs (run id, steps done, the
        running step, elapsed time, and a bar while many calls of one step wait or run),
        ending as a summary: ``run 'summarize-1f3a9c0e' · 12 steps · 3.4 s · done``.
        ``progress=False`` leaves it out for this run, ``progress=True`` shows it whatever the
        setting; ``notebook_workflows.settings.progress = False`` leaves it out of every run
        (resumes, forks and reruns too). Scripts and terminals never show it, nor does a run
        whose monitor (``handler.monitor()``) is shown.
        """
        try:
            carried = _run_options_in(start_event)
            if carried:
                checkpoint = carried.get("checkpoint", checkpoint)
                durability = carried.get("durability", durability)
                cache = carried.get("cache", cache)
                executor = carried.get("executor", executor)
                stepwise = carried.get("stepwise", stepwise)
                progress = carried.get("progress", progress)
            check_executor(executor, "run(executor=...)")
            check_run_id(run_id)
            if progress is not None and not isinstance(progress, bool):
                raise TypeError(f"run(progress=...) is True, False or None, got {progress!r}")
            table = None
            if cache is not None:  # reuse what earlier runs in that store did; record there
                table, checkpoint = durable().cache_table(self, cache), checkpoint or cache
            args = (ctx, stepwise, run_id, checkpoint, durability, start_event, fields)
            return self._run(*args, table, executor, progress)
        except Exception as error:  # a refusal names its cause: show the user's line, not ours
            raise for_people(error) from error.__cause__

    def _run(
        self,
        ctx: Context[Any] | None,
        stepwise: bool,
        run_id: str | None,
        checkpoint: Any,
        durability: str,
        start_event: StartEvent | None,
        fields: dict[str, Any],
        replay: Any = None,
        executor: Any = None,
        progress: bool | None = None,
    ) -> WorkflowHandler:
        """``run`` itself: its frames are left out of the tracebacks users see."""
        self._check_can_run(durability)
        ctx = self._context_to_run(ctx)
        state = ctx._state
        if state.status in ("running", "waiting", "failed", "cancelled"):
            if fields or start_event is not None:
                check_same_start(state, self._start_event(start_event, fields))
            state.replay = replay
            return self._launch(
                ctx, state, True, run_id, stepwise, checkpoint, durability, executor, progress
            )
        # a new run; a finished context starts a new run that keeps its store
        event = self._start_event(start_event, fields)
        name = type(self).__name__
        fresh = state.status == "new"
        state = RunState(ctx._specs, (fresh and state.run_id) or None, name)
        state.start_event = event
        state.replay = replay
        routing.route(state, event)
        return self._launch(
            ctx,
            state,
            False,
            run_id or state.run_id,
            stepwise,
            checkpoint,
            durability,
            executor,
            progress,
        )

    def _check_can_run(self, durability: str) -> None:
        """Refuse a run that cannot start here: no event loop, a graph that does not hold
        together (unless validation is off), a durability that is not one of the words."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise WorkflowRuntimeError(
                f"{type(self).__name__}.run() needs a running event loop: write "
                f"`await workflow.run(...)` in a notebook cell or an async function, or call "
                f"`workflow.run_sync(...)` from plain synchronous code"
            ) from None
        if not self.disable_validation:
            self._check_graph()
        else:
            type(self)._step_specs()  # the steps must still be readable
        if durability not in DURABILITY:
            raise ValueError(
                f"durability must be one of {', '.join(map(repr, DURABILITY))}, not {durability!r}"
            )

    def _context_to_run(self, ctx: Context[Any] | None) -> Context[Any]:
        """``ctx`` if this workflow may run it (a context of this workflow's class, not running
        now), or a new context."""
        if ctx is None:
            return Context(self)
        if not isinstance(ctx, Context):
            raise TypeError(f"ctx must be a Context, got {type(ctx).__name__}")
        if type(ctx.workflow) is not type(self):
            raise WorkflowRuntimeError(
                f"this context belongs to {type(ctx.workflow).__qualname__}, "
                f"not to {type(self).__qualname__}"
            )
        if ctx.is_running:
            raise ContextStateError(
                f"run {ctx.run_id!r} of this context is already running; await its handler "
                f"(or cancel it) first"
            )
        return ctx

    def _launch(
        self,
        ctx: Context[Any],
        state: RunState,
        continuing: bool,
        run_id: str | None,
        stepwise: bool,
        checkpoint: Any,
        durability: str = "sync",
        executor: Any = None,
        progress: bool | None = None,
    ) -> WorkflowHandler:
        """Drive ``state`` for ``ctx``: a new run, or one that continues where it stopped (a
        restored, failed or cancelled run, a fork, a finished run shown again by resume).
        ``progress``: whether a notebook cell awaiting it shows its status line (``None``:
        as ``settings.progress`` says)."""
        from .runtime.driver import Driver

        old_run_id = state.run_id
        state.run_id = run_id or state.run_id or new_run_id(type(self).__name__)
        state.stepwise = stepwise
        state.timeout = self.timeout
        checkpoint = checkpoint if checkpoint is not None else self.checkpoint
        if checkpoint is False:
            checkpoint = None
        state.checkpointed = checkpoint is not None
        if state.replay is not None:  # a replayed call must find what it read unchanged
            state.replay.read_digest = ctx.store._read_digest
        if checkpoint is not None:
            # a store is wrapped in a recorder; an object with the hooks is used as it is
            checkpoint = durable().wrap(checkpoint, continuing=continuing, durability=durability)
        executor = executor if executor is not None else self.executor
        driver = Driver(self, ctx, state, checkpoint=checkpoint, executor=executor)
        try:
            driver.start(continuing=continuing)
        except BaseException:
            state.run_id = old_run_id
            raise
        ctx._workflow = self
        handler = WorkflowHandler(driver)
        if (settings.progress if progress is None else progress) and in_notebook_kernel():
            notebook_face().status_line(handler)
        return handler

    def run_sync(self, ctx: Context[Any] | None = None, **kwargs: Any) -> Any:
        """The same run, blocking until its result: for scripts, REPLs and plain notebook
        cells (there it runs on a private event loop in a helper thread, and what its steps
        print still appears under the cell).

        A question for a human (``InputRequiredEvent``) is asked on the terminal when there
        is one; in a notebook a blocked cell would also block the answer, so a workflow that
        asks a human must be run there with ``await workflow.run(...)``.
        """
        from ._loop import in_notebook_kernel, run_blocking

        notebook = in_notebook_kernel()
        if notebook and type(self)._asks_humans():
            raise WorkflowRuntimeError(self._blocked_question_message())
        self._check_graph()  # fail here, with nothing started, rather than on the helper thread

        async def run_and_wait() -> Any:
            handler = self.run(ctx, **kwargs)
            handler.subscribe(lambda item: _answer_on_terminal(handler, item, notebook, self))
            return await handler

        return run_blocking(run_and_wait)

    @classmethod
    def _asks_humans(cls) -> bool:
        specs = cls._step_specs().values()
        return any(issubclass(t, InputRequiredEvent) for s in specs for t in s.produces) or any(
            issubclass(t, HumanResponseEvent) for s in specs for t in s.accepts
        )

    def _blocked_question_message(self, question: str = "") -> str:
        asked = f" ({question!r})" if question else ""
        return (
            f"{type(self).__name__} asks a human{asked}, and a plain cell running run_sync "
            f"blocks the kernel, so no answer could reach it: write "
            f"`await workflow.run(...)` in the cell instead (show the question with "
            f"`handler.monitor()`, or answer it with handler.ctx.send_event)"
        )

    def resume(
        self,
        run_id: str,
        *,
        store: Any = None,
        at: int | None = None,
        force: bool = False,
        durability: str = "sync",
    ) -> WorkflowHandler:
        """Continue checkpointed run ``run_id`` from its latest snapshot, appending to its
        history; with ``at=n``, fork snapshot ``n`` into a new run instead (the original stays
        as it was). ``store`` defaults to this workflow's ``checkpoint`` store, else to
        ``SQLiteStore()``. Completed steps never run again; steps that were running when the
        process died run again (at-least-once). A run going on in another process is refused
        naming its owner; ``force=True`` takes it over. See ``checkpoint.resume``.
        """
        try:
            return durable().resume_run(
                self, run_id, store=store, at=at, force=force, durability=durability
            )
        except Exception as error:  # a refusal names its cause: show the user's line, not ours
            raise for_people(error) from error.__cause__

    def fork(
        self,
        run_id: str,
        *,
        at: int | None = None,
        store_edits: dict[str, Any] | None = None,
        store: Any = None,
        durability: str = "sync",
    ) -> WorkflowHandler:
        """Fork checkpointed run ``run_id`` at snapshot ``at`` (its latest when ``None``) into
        a new run, with ``store_edits`` (``{"key": value}``, dotted keys reach into nested
        values) set in its store first; ``await`` the handler for the fork's result.

        Each edit is checked as ``ctx.store.set`` checks it: a refused value raises the same
        error naming the key, and nothing is written. The fork's first snapshot records the
        edits (``Snapshot.edits``); the original run is not touched. ``resume(run_id, at=n)``
        is the same fork without edits. See ``checkpoint.resume``.
        """
        try:
            return durable().fork_run(
                self, run_id, at=at, store_edits=store_edits, store=store, durability=durability
            )
        except Exception as error:  # a refusal names its cause: show the user's line, not ours
            raise for_people(error) from error.__cause__

    def rerun(self, run_id: str, *, store: Any = None, durability: str = "sync") -> WorkflowHandler:
        """Run checkpointed run ``run_id`` again as a new run after editing steps: calls whose
        step code and input are unchanged are replayed, not called; the rest run. ``store`` as
        for ``resume``; see ``checkpoint.rerun``."""
        try:
            return durable().rerun_run(self, run_id, store=store, durability=durability)
        except Exception as error:  # a refusal names its cause: show the user's line, not ours
            raise for_people(error) from error.__cause__

    def rerun_sync(self, run_id: str, *, store: Any = None, durability: str = "sync") -> Any:
        """``rerun`` from plain synchronous code, blocking until the new run's result."""
        from ._loop import run_blocking

        async def rerun_and_wait() -> Any:
            return await self.rerun(run_id, store=store, durability=durability)

        return run_blocking(rerun_and_wait)

    def resume_sync(
        self,
        run_id: str,
        *,
        store: Any = None,
        at: int | None = None,
        force: bool = False,
        durability: str = "sync",
    ) -> Any:
        """``resume`` from plain synchronous code (a script, a plain cell), blocking until the
        run's result, the way ``run_sync`` is to ``run``."""
        from ._loop import run_blocking

        async def resume_and_wait() -> Any:
            return await self.resume(run_id, store=store, at=at, force=force, durability=durability)

        return run_blocking(resume_and_wait)

    async def debug_step(
        self,
        run_id: str,
        *,
        store: Any = None,
        at: int | None = None,
        step: str | None = None,
    ) -> StepCall:
        """The call of the step that failed in checkpointed run ``run_id``, to try again in a
        cell: ``call.event`` is its input, ``call.store`` the run's store as it was, and
        ``await call.run()`` calls the step's current code (fix it, re-run the cell that
        defines the class, call again) on a scratch copy of the run. Nothing is written to the
        run's store: ``run()`` returns what the step returned, sent and changed in the store,
        and an exception the step raises is raised in the cell, its traceback ending in the
        step, so ``%debug`` opens there. Then ``await workflow.resume(run_id)`` goes on.

        ``at=n`` takes the call that was running at snapshot ``n`` instead (the one
        ``resume(run_id, at=n)`` would run first), with the store as it was there; among
        several, the one that failed, else the oldest, or with ``step=`` the oldest of that
        step. ``store`` as for ``resume``; see ``checkpoint.debug``.
        """
        try:
            return durable().debug_step(self, run_id, store=store, at=at, step=step)
        except Exception as error:  # a refusal names its cause: show the user's line, not ours
            raise for_people(error) from error.__cause__

    def debug_step_sync(
        self,
        run_id: str,
        *,
        store: Any = None,
        at: int | None = None,
        step: str | None = None,
    ) -> StepCall:
        """``debug_step`` from plain synchronous code; ``call.run_sync()`` calls the step."""
        try:
            return durable().debug_step(self, run_id, store=store, at=at, step=step)
        except Exception as error:  # a refusal names its cause: show the user's line, not ours
            raise for_people(error) from error.__cause__

    # -- resources and display ------------------------------------------------------------------

    def _start_event(self, given: StartEvent | None, fields: dict[str, Any]) -> StartEvent:
        return build_start_event(type(self)._start_event_type(), given, fields)

    def _nw_resource_cache(self) -> ResourceCache:
        cache = self.__dict__.get("_nw_resources")
        if cache is None:
            cache = self.__dict__["_nw_resources"] = ResourceCache()
        return cache

    def draw(self, *, direction: str = "TB") -> WorkflowGraph:
        """The step/event graph; shows itself inline as SVG in a notebook.
        ``direction="LR"`` lays a wide graph out left to right."""
        return notebook_face().workflow_graph(self, direction)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.draw()._repr_mimebundle_(include, exclude)

    def __repr__(self) -> str:
        steps = type(self)._step_specs()
        return f"<{type(self).__qualname__}: {len(steps)} steps: {', '.join(steps)}>"


def _answer_on_terminal(handler: WorkflowHandler, item: Any, notebook: bool, wf: Workflow) -> None:
    """run_sync's answer to a question: the terminal's ``input()``, or a clear failure."""
    if not isinstance(item, InputRequiredEvent) or handler.done():
        return
    import sys

    interactive = not notebook and sys.stdin is not None and sys.stdin.isatty()
    if not interactive:
        handler._abort(WorkflowRuntimeError(wf._blocked_question_message(item.prefix)))
        return

    async def ask() -> None:
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(None, input, f"{item.prefix} ")
        except EOFError:
            handler._abort(WorkflowRuntimeError("no answer: the terminal input ended"))
            return
        if not handler.done():
            handler.ctx.send_event(HumanResponseEvent(response=answer))

    asyncio.get_running_loop().create_task(ask())


def _defining_frame(frame: Any) -> Any:
    """The frame whose code defines the class: past the ``__new__`` frames of metaclasses
    (pydantic's ``ModelMetaclass`` for a workflow that is also a model, ``ABCMeta``), each
    recognised by its first argument being a metaclass."""
    while frame.f_back is not None and frame.f_code.co_name == "__new__":
        code = frame.f_code
        first = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
        if not (isinstance(first, type) and issubclass(first, type)):
            break
        frame = frame.f_back
    return frame


_RUN_OPTIONS = ("checkpoint", "durability", "cache", "executor", "stepwise", "progress")


def _run_options_in(start_event: StartEvent | None) -> dict[str, Any]:
    """Run options a start event carries among its extra fields, taken out of it.

    LlamaIndex's agents build their start event from every keyword ``agent.run()`` does not
    know, so ``agent.run(user_msg=..., checkpoint=store)`` arrives here as an event with a
    ``checkpoint`` field: such a field is this run's option, not data for the steps. A field
    the event's class declares is left alone."""
    extra = start_event.__pydantic_extra__ if start_event is not None else None
    if not extra:
        return {}
    return {name: extra.pop(name) for name in _RUN_OPTIONS if name in extra}


_UNSET: Any = object()
