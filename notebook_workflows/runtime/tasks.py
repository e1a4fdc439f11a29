"""Starting step invocations as asyncio tasks, as cheaply as a step deserves.

Design decisions worth knowing before changing anything here:

* Each invocation is a task from its first line, so code in a step that asks for the current
  task (``asyncio.timeout``, ``TaskGroup``, anyio) gets one of its own. It starts eagerly: it
  runs right here, in the caller, until it first suspends, and most steps finish before that.
  That is what keeps a step at a few microseconds of overhead. Python 3.12 has eager tasks;
  3.10 and 3.11 get the same from a ``_Carrier`` task (below).
* Each invocation runs in its own copy of the context variables of the code that started the
  run (not of whatever code happens to trigger the start), holding the invocation itself
  (``view.current_invocation_var``): that is how ``ctx.send_event`` and friends know which step
  is calling, even from tasks or threads the step started.
* Sync steps run on an executor: the step's own (``@step(executor=...)``), else the run's
  (``run(executor=...)``, ``Workflow(executor=...)``), else a thread pool, one per run, made
  on first use. A thread pool shares the run's process and its ``Context``; any other
  executor (a process pool, Dask) runs the step elsewhere, with a copy of what it needs
  (``remote.py``), and what it did comes back as one ``RemoteStepReturned``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import contextvars
import functools
import logging
import sys
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import SnapshotError
from ..step import CONTEXT, EVENT, GATHER, StepSpec
from . import transitions as T
from .state import Invocation
from .view import current_context_var, current_invocation_var

if TYPE_CHECKING:
    from ..context import Context
    from ..resources import ResourceCache

_EAGER_TASKS = sys.version_info >= (3, 12)
logger = logging.getLogger("notebook_workflows")

# A carrier asked to cancel (``current_task().cancel()`` in a step) is not reused.
_cancelling: Callable[[asyncio.Task[Any]], int] = (
    (lambda task: task.cancelling()) if sys.version_info >= (3, 11) else (lambda task: 0)
)

# What a finished invocation reports: (invocation, attempt, value, error); error is None when
# it returned ``value``.
Report = Callable[[Invocation, int, Any, "BaseException | None"], None]


class _Carrier(collections.abc.Coroutine):
    """Python 3.10/3.11, where tasks cannot start eagerly: the coroutine of a task that is
    the current task while steps run eagerly (so ``asyncio.timeout``, ``TaskGroup`` or anyio
    inside a step find a task of their own), and that becomes the task of the first step that
    suspends, taking it over from where it stopped.

    A carrier not claimed by the time the loop runs its task simply ends; many steps that
    finish without suspending share one, so a step costs no task of its own.
    """

    __slots__ = ("coro", "cv", "first", "state")

    SPARE, SUSPENDED, RUNNING = range(3)  # SPARE is 0: ``if carrier.state`` means taken

    def __init__(self) -> None:
        self.coro: Coroutine[Any, Any, Any] | None = None
        self.cv: contextvars.Context | None = None
        self.first: Any = None
        self.state = self.SPARE

    def send(self, value: Any) -> Any:
        if self.state == self.SPARE:
            raise StopIteration(None)
        assert self.coro is not None and self.cv is not None
        if self.state == self.SUSPENDED:
            self.state = self.RUNNING
            return self.first
        return self.cv.run(self.coro.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        error = (
            typ
            if isinstance(typ, BaseException)
            else (val if isinstance(val, BaseException) else typ(val))
        )
        if self.state == self.SPARE:
            raise error
        assert self.coro is not None and self.cv is not None
        self.state = self.RUNNING
        return self.cv.run(self.coro.throw, error)

    def close(self) -> None:
        if self.state != self.SPARE and self.coro is not None:
            self.coro.close()

    def __await__(self) -> Any:  # pragma: no cover - only tasks drive it
        return self


class StepRunner:
    """Calls steps for one run and reports how each invocation ended."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ctx: Context[Any],
        resources: ResourceCache,
        report: Report,
        run_id: str,
        executor: Any = None,
    ) -> None:
        self.loop = loop
        self.ctx = ctx
        self.workflow = ctx.workflow
        self.specs: dict[str, StepSpec] = ctx._specs
        self.resources = resources
        self.report = report
        self.run_id = run_id
        self.base = contextvars.copy_context()  # the context the run was started in
        self.base.run(current_context_var.set, ctx)  # what Context.get_step_context() finds
        # invocation id -> (invocation, attempt, task), for invocations that suspended
        self.tasks: dict[int, tuple[Invocation, int, asyncio.Task[Any]]] = {}
        # Called in each invocation's context before it runs: how a monitor routes the output
        # of steps to itself (by setting the kernel's output context variables there).
        self.step_context: list[Callable[[], Any]] = []
        self.executor: ThreadPoolExecutor | None = None  # the default pool, owned here
        self.run_executor = executor  # the run's or workflow's; not ours to shut down
        self.shipment: Any = None  # what remote calls share (remote.Shipment), made at need
        self.once_lines: dict[int, Any] = {}  # remote ctx.once records' listeners, by executor
        # remote calls the run waits for, by call number: [invocation, its attempt, how many
        # starts of the call asked for the records the run holds] (``_records_held``)
        self.remote_calls: dict[int, list[Any]] = {}
        self.carrier = _Carrier()
        self.carrier_task: asyncio.Task[Any] | None = None
        self._fast_args = {name: self._fast_arguments(spec) for name, spec in self.specs.items()}

    def start(self, inv: Invocation) -> None:
        """Run ``inv`` as far as it goes without suspending; the rest goes on in its task."""
        spec = self.specs[inv.step]
        attempt = inv.attempt
        cv = self.base.copy()
        cv.run(current_invocation_var.set, inv)
        for setup in self.step_context:
            cv.run(setup)
        fast = self._fast_args[inv.step]
        try:
            if fast is not None:
                coro = spec.fn(*fast(inv.event))
            elif spec.is_async:
                arguments = self._arguments(spec, inv)
                if arguments is None:
                    coro = self._invoke(spec, inv)
                else:
                    coro = spec.fn(*arguments[0], **arguments[1])
            else:
                coro = self._invoke(spec, inv)
        except Exception as exc:  # a step that is not really async raised when called
            self.report(inv, attempt, None, exc)
            return
        if _EAGER_TASKS:
            # eager_start is Python 3.12+, which _EAGER_TASKS checks; mypy reads 3.11's Task
            task = asyncio.Task(coro, loop=self.loop, context=cv, eager_start=True)  # type: ignore[call-arg]
            if task.done():
                if task.cancelled():
                    self.report(inv, attempt, None, asyncio.CancelledError())
                else:
                    error = task.exception()
                    self.report(inv, attempt, None if error else task.result(), error)
                return
        else:
            carried = self._start_carried(inv, attempt, coro, cv)
            if carried is None:
                return
            task = carried
        self.tasks[inv.id] = (inv, attempt, task)
        task.add_done_callback(functools.partial(self._task_done, inv, attempt))

    def _task_done(self, inv: Invocation, attempt: int, task: asyncio.Task[Any]) -> None:
        entry = self.tasks.get(inv.id)
        if entry is None or entry[2] is not task:
            if not task.cancelled():
                task.exception()  # an attempt given up on: its error is not news to anyone
            return  # already reported (see ``report_done``), or replaced by a retry
        del self.tasks[inv.id]
        self._report_task(inv, attempt, task)

    def _report_task(self, inv: Invocation, attempt: int, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.report(inv, attempt, None, asyncio.CancelledError())
            return
        error = task.exception()
        self.report(inv, attempt, None if error is not None else task.result(), error)

    def take_done(self) -> list[tuple[Invocation, int, asyncio.Task[Any]]]:
        """The invocations whose tasks have finished but whose done callbacks have not run
        yet, taken out of the table (their callbacks will do nothing)."""
        done = [entry for entry in self.tasks.values() if entry[2].done()]
        for inv, _, _ in done:
            del self.tasks[inv.id]
        return done

    def _start_carried(
        self, inv: Invocation, attempt: int, coro: Coroutine[Any, Any, Any], cv: contextvars.Context
    ) -> asyncio.Task[Any] | None:
        """Python 3.10/3.11: run the step now, as far as it goes without suspending, with the
        carrier task as the current task (see ``_Carrier``). Returns the task that goes on
        with it if it suspended, else None (its end is already reported)."""
        carrier, task = self.carrier, self.carrier_task
        if task is None or carrier.state or task.done() or _cancelling(task):
            carrier = self.carrier = _Carrier()
            task = self.carrier_task = self.loop.create_task(carrier)
        loop = self.loop
        outer = asyncio.current_task(loop)
        if outer is not None:
            _leave_task(loop, outer)
        _enter_task(loop, task)
        try:
            first = cv.run(coro.send, None)
        except StopIteration as stop:
            value, error = stop.value, None
        except BaseException as exc:  # CancelledError too: the step raised it itself
            if not isinstance(exc, (Exception, asyncio.CancelledError)):
                raise
            value, error = None, exc
        else:
            carrier.coro, carrier.cv, carrier.first = coro, cv, first
            carrier.state = carrier.SUSPENDED
            self.carrier_task = None  # taken: the next step gets a new carrier
            return task
        finally:
            _leave_task(loop, task)
            if outer is not None:
                _enter_task(loop, outer)
        self.report(inv, attempt, value, error)
        return None

    # -- arguments ----------------------------------------------------------------------------

    def _fast_arguments(self, spec: StepSpec) -> Callable[[Any], tuple[Any, ...]] | None:
        """For an async step without resources: a function making its positional arguments
        (the workflow first, for a method) from the event, so the common call costs no loop
        over the parameters."""
        if not spec.is_async or spec.keyword_only or spec.resources:
            return None
        ctx, wf = self.ctx, self.workflow
        kinds = tuple(kind for kind, _, _ in spec.params)
        if GATHER in kinds:  # a join: its parameters come out of the Gathered event
            return None
        if spec.free:
            return lambda ev: tuple(ev if kind is EVENT else ctx for kind in kinds)
        if kinds == (EVENT,):
            return lambda ev: (wf, ev)
        if kinds == (CONTEXT, EVENT):
            return lambda ev: (wf, ctx, ev)
        if kinds == (EVENT, CONTEXT):
            return lambda ev: (wf, ev, ctx)
        return lambda ev: (wf, *(ev if kind is EVENT else ctx for kind in kinds))

    def _arguments(
        self, spec: StepSpec, inv: Invocation, made: dict[str, Any] | None = None
    ) -> tuple[list[Any], dict[str, Any]] | None:
        """The call's arguments, or None when a resource has yet to be made (awaited);
        ``made`` holds resources already made for this call."""
        args: list[Any] = [] if spec.free else [self.workflow]
        kwargs: dict[str, Any] = {}
        for kind, name, resource in spec.params:
            if kind is EVENT:
                value: Any = inv.event
            elif kind is GATHER:
                # a join's invocation carries a Gathered event (no cast: a step's hot path)
                value = inv.event.events[name]  # type: ignore[attr-defined]
            elif kind is CONTEXT:
                value = self.ctx
            elif made is not None and name in made:
                value = made[name]
            else:
                assert resource is not None
                found, value = self.resources.cached(resource)
                if not found:
                    return None
            if name in spec.keyword_only:
                kwargs[name] = value
            else:
                args.append(value)
        return args, kwargs

    async def _invoke(self, spec: StepSpec, inv: Invocation) -> Any:
        """The general path: make resources first, run sync steps on worker threads."""
        made = {name: await self.resources.get(res) for name, res in spec.resources}
        arguments = self._arguments(spec, inv, made)
        assert arguments is not None
        args, kwargs = arguments
        if spec.is_async:
            return await spec.fn(*args, **kwargs)
        executor = spec.executor or self.run_executor
        if executor is not None and not isinstance(executor, ThreadPoolExecutor):
            return await self._run_elsewhere(executor, spec, inv, args, kwargs)
        if any(kind is CONTEXT for kind, _, _ in spec.params):  # a def cannot await: its
            # ctx.store has plain calls
            ctx = self.ctx._for_sync_step(self.loop)
            args = [ctx if arg is self.ctx else arg for arg in args]
            kwargs = {k: ctx if v is self.ctx else v for k, v in kwargs.items()}
        cv = contextvars.copy_context()
        call = functools.partial(cv.run, spec.fn, *args, **kwargs)
        return await self.loop.run_in_executor(executor or self._executor(), call)

    async def _run_elsewhere(
        self,
        executor: Any,
        spec: StepSpec,
        inv: Invocation,
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> T.RemoteStepReturned:
        """Run a sync step on an executor in another process: ship a copy of what it needs,
        and hand back what it did as one transition (``Driver._report`` dispatches it)."""
        from .. import remote

        attempt = inv.attempt
        ctx = None
        if any(kind is CONTEXT for kind, _, _ in spec.params):
            ctx = remote.RemoteContext(
                inv.step,
                self.run_id,
                remote.RemoteStore(self.ctx.store._state_type, self.ctx.store._encoded(raw=True)),
                self._retry_of(inv),
                dict(inv.journal or {}),
                inv.id,
                self._line_for(executor),
            )
        shipped = [
            ctx if arg is self.ctx else remote.workflow_copy(arg) if arg is self.workflow else arg
            for arg in args
        ]
        kwargs = {k: ctx if v is self.ctx else v for k, v in kwargs.items()}
        # what each argument is, to name the one that cannot travel
        parts = [] if spec.free else [("workflow", shipped[0])]
        positional = iter(shipped[len(parts) :])
        for kind, name, _ in spec.params:
            what = {EVENT: "event", GATHER: f"event {name!r}", CONTEXT: "context"}.get(
                kind, f"resource {name!r}"
            )
            parts.append((what, kwargs[name] if name in spec.keyword_only else next(positional)))
        call = remote.RemoteCall(inv.step, spec.fn, shipped, kwargs, ctx)
        if self.shipment is None:
            self.shipment = remote.Shipment()
        body, key, head = remote.pack(call, self.run_id, executor, parts, self.shipment)
        known = self.shipment.known
        self.remote_calls[call.number] = [inv, attempt, 0]
        try:
            future = remote.submit(executor, body, key, head)
            outcome = remote.unpack(await asyncio.wrap_future(future), known)
        finally:
            del self.remote_calls[call.number]
        driver = self.ctx._driver
        if outcome.error is not None:
            if driver is not None:  # what ctx.once recorded survives the failed attempt
                for once_key, encoded in outcome.journal.items():
                    with contextlib.suppress(SnapshotError):  # kept in this process then
                        await driver.journal(inv, once_key, encoded)
            raise outcome.error
        return T.RemoteStepReturned(
            inv,
            attempt,
            outcome.value,
            outcome.stored,
            outcome.deleted,
            outcome.effects,
            outcome.journal,
            outcome.where,
        )

    def _line_for(self, executor: Any) -> Any:
        """The line that carries a remote step's ``ctx.once`` records to this run while the
        step runs (``journal_line``: Dask, and process pools for a checkpointed run); else
        None. One listener per executor, for the whole run."""
        key = id(executor)
        if key not in self.once_lines:
            from ..journal_line import listener_for

            self.once_lines[key] = listener_for(
                executor,
                self.run_id,
                self.loop,
                self._record_once,
                self._records_held,
                self.ctx._state.checkpointed,
            )
        listener = self.once_lines[key]
        return listener.line if listener is not None else None

    async def _record_once(self, invocation: int, key: str, encoded: Any) -> None:
        """A remote step's ``ctx.once`` record, written down before this returns (nothing is
        recorded for an invocation that is no longer running)."""
        inv = self.ctx._state.in_flight.get(invocation)
        driver = self.ctx._driver
        if inv is not None and driver is not None:
            await driver.journal(inv, key, encoded)

    async def _records_held(
        self, invocation: int, number: int, start: int, key: str
    ) -> tuple[dict[str, Any], int] | str:
        """The ``ctx.once`` records this run holds for the remote call numbered ``number``
        and the number of the call's start asking (``start``, or a new one if 0), or why it
        gets none: the run no longer waits for that call, a newer start of it runs, or an
        earlier record of the run is not safe in its store (so ``once(key)`` may not call
        yet, as on the run's own loop)."""
        waiting = self.remote_calls.get(number)
        inv = self.ctx._state.in_flight.get(invocation)
        if (
            waiting is None
            or inv is None
            or waiting[0] is not inv
            or waiting[1] != inv.attempt  # a sync step that timed out runs on, ignored
            or inv.timed_out
        ):
            return (
                f"run {self.run_id!r} no longer waits for this call (the run ended, or gave up "
                f"on this attempt of the step)"
            )
        held = dict(inv.journal or {})
        if start == 0:
            waiting[2] += 1
            start = waiting[2]
            if start > 1:
                logger.warning(
                    "step %r (run %r) started again on another worker (Dask took the one it "
                    "ran on for dead); it gets the ctx.once records the run holds (%s), and "
                    "does not make those calls again",
                    inv.step,
                    self.run_id,
                    ", ".join(map(repr, held)) or "none",
                )
        elif start != waiting[2]:
            return "a newer start of this call runs elsewhere (Dask took this worker for dead)"
        driver = self.ctx._driver
        if key not in held and driver is not None:
            try:
                await driver.once_ready(inv, key)
            except Exception as exc:
                cause = exc.__cause__ or exc
                return (
                    f"a checkpoint of the run before it could not be written "
                    f"({type(cause).__name__}: {cause}); continue with "
                    f"workflow.resume({self.run_id!r})"
                )
        return held, start

    @staticmethod
    def _retry_of(inv: Invocation) -> tuple[int, float, Exception | None, float]:
        """``retry_info()``'s figures for a remote context; an error that cannot travel goes
        as its text."""
        from ..errors import WorkflowRuntimeError
        from ..remote import dumps

        error = (
            inv.last_error if inv.attempt > 1 and isinstance(inv.last_error, Exception) else None
        )
        if error is not None:
            try:
                dumps(error)
            except Exception:
                error = WorkflowRuntimeError(f"{type(error).__name__}: {error}")
        return (
            inv.attempt - 1,
            max(0.0, inv.started - inv.first_started),
            error,
            inv.failed_at if inv.attempt > 1 else 0.0,
        )

    def _executor(self) -> ThreadPoolExecutor:
        if self.executor is None:
            workers = sum(s.num_workers for s in self.specs.values() if not s.is_async)
            self.executor = ThreadPoolExecutor(
                max_workers=max(4, min(workers, 64)),
                thread_name_prefix=f"nw-{self.run_id}",
            )
        return self.executor

    def task_of(self, inv: Invocation) -> asyncio.Task[Any] | None:
        entry = self.tasks.get(inv.id)
        return entry[2] if entry is not None else None

    def alive(self) -> list[tuple[Invocation, int, asyncio.Task[Any]]]:
        """The invocations whose tasks still run."""
        return [entry for entry in self.tasks.values() if not entry[2].done()]

    def close(self) -> None:
        for listener in self.once_lines.values():
            if listener is not None:
                listener.stop()
        if self.executor is not None:
            self.executor.shutdown(wait=False)
