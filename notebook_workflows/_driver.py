"""The asyncio driver: executes what the scheduler core (``runtime.RunState``) decides.

Design decisions worth knowing before changing anything here:

* Steps run eagerly. An async step's coroutine is started in place and only becomes an asyncio
  task if it actually suspends (awaits I/O, a sleep, an event). Most steps finish without
  suspending, and a task per invocation would cost more than the whole step; this is what keeps
  a step at a few microseconds of overhead. ``_continue`` hands a suspended coroutine over to a
  task exactly where it stopped.
* Each invocation runs in its own copy of the context variables, holding the invocation itself
  (``current_invocation()``): that is how ``ctx.send_event``, ``collect_events`` and
  ``wait_for_event`` know which step is calling, even from tasks or threads the step started.
* Everything that changes the run goes through ``RunState`` on the loop's thread; calls from
  other threads (sync steps, a cell while ``run_sync`` runs) are handed to the loop first.
* A run that can make no progress (nothing queued or running, nobody waiting for an answer)
  fails at once with the reason, instead of hanging until a timeout.
"""

from __future__ import annotations

import asyncio
import collections.abc
import concurrent.futures
import contextvars
import functools
import logging
import sys
import threading
import time
from asyncio.tasks import _enter_task, _leave_task
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import WorkflowCancelledError, WorkflowRuntimeError, WorkflowTimeoutError
from .events import (
    Event,
    InputRequiredEvent,
    RunStatusChanged,
    StepFailed,
    StepFinished,
    StepStarted,
)
from .runtime import Invocation, RunState, Waiter
from .runtime.view import current_invocation_var
from .step import CONTEXT, EVENT, StepSpec

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .context import Context
    from .workflow import Workflow

logger = logging.getLogger("notebook_workflows")
T = TypeVar("T")

_current: contextvars.ContextVar[Invocation | None] = current_invocation_var

STREAM_LOG_SIZE = 10_000
_END = object()  # marks the end of a stream subscription


def current_invocation() -> Invocation | None:
    """The step invocation the calling code runs in, or None outside of steps."""
    return _current.get()


# Python 3.12 tasks can start eagerly: run in the caller until their first suspension, as
# themselves (``current_task()`` is the new task). Earlier Pythons get the same from a
# ``_Carrier`` task (``Driver._start_carried``).
_EAGER_TASKS = sys.version_info >= (3, 12)


# A carrier asked to cancel (``current_task().cancel()`` in a step) is not reused.
_cancelling: Callable[[asyncio.Task[Any]], int] = (
    (lambda task: task.cancelling()) if sys.version_info >= (3, 11) else (lambda task: 0)
)


class _Carrier(collections.abc.Coroutine):  # type: ignore[type-arg]
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


class Driver:
    """Runs one run on the running event loop."""

    def __init__(
        self,
        workflow: Workflow,
        ctx: Context[Any],
        *,
        run_id: str,
        stepwise: bool,
        timeout: float | None,
        checkpoint: Any = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.workflow = workflow
        self.workflow_name = type(workflow).__name__
        self.ctx = ctx
        self.state: RunState = ctx._state
        self.specs: dict[str, StepSpec] = ctx._specs
        self.run_id = run_id
        self.stepwise = stepwise
        self.timeout = timeout
        self.checkpoint = checkpoint
        self.status = "running"
        self.finished = False
        self.error: BaseException | None = None
        self.result: asyncio.Future[Any] = self.loop.create_future()
        self.result.add_done_callback(self._result_settled)
        self.listeners: list[Callable[[Any], None]] = []
        self.stream_log: deque[Event] = deque(maxlen=STREAM_LOG_SIZE)
        self.tasks: dict[int, asyncio.Future[Any]] = {}
        self.waiter_futures: dict[Waiter, asyncio.Future[Event]] = {}
        self.resumable: list[tuple[Waiter, asyncio.Future[Event], Event]] = []
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.step_timers: dict[int, asyncio.TimerHandle] = {}
        self.settled: dict[int, asyncio.Future[None]] = {}
        self.wakeup: asyncio.Future[None] | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.main_task: asyncio.Task[None] | None = None
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.stepping = False
        self.last: Invocation | None = None  # the last completed invocation (for displays)
        # Called in each invocation's context before it runs: how a monitor routes the output
        # of steps to itself (by setting the kernel's output context variables there).
        self.step_context: list[Callable[[], Any]] = []
        self._budget = timeout
        self._clock_since: float | None = None
        self._timeout_handle: asyncio.TimerHandle | None = None
        self._resources = workflow._nw_resource_cache()
        self._fast_args = {name: self._fast_arguments(spec) for name, spec in self.specs.items()}
        self.carrier = _Carrier()
        self.carrier_task: asyncio.Task[Any] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint.run_started(self)  # raises (nothing started) if the store fails
        self.ctx._driver = self
        self.ctx._status = "running"
        self.ctx.store._reset_lock()
        for question in self.state.questions:
            self.publish(question)  # a restored run asks its open questions again
        self.main_task = self.loop.create_task(
            self._main(), name=f"notebook_workflows run {self.run_id}"
        )

    async def _main(self) -> None:
        try:
            if not self.stepwise:
                self._clock_run()
            while not self.finished:
                if not self.stepwise:
                    more = self._pump()
                    if self.finished:
                        break
                    if more:
                        await asyncio.sleep(0)  # let the loop breathe in a long eager stretch
                        continue
                self._update_status()
                if self.finished:
                    break
                self.wakeup = self.loop.create_future()
                await self.wakeup
                self.wakeup = None
        except asyncio.CancelledError:
            self._end("cancelled", detail="the run's task was cancelled")
        except BaseException as exc:
            if isinstance(exc, Exception):
                logger.exception("notebook_workflows: internal error in run %s", self.run_id)
                self._end("failed", exc)
            else:  # KeyboardInterrupt, SystemExit: stop the run, let the signal through
                self._end("cancelled", detail=f"interrupted ({type(exc).__name__})")
                raise

    def _poke(self) -> None:
        wakeup = self.wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _update_status(self) -> None:
        state = self.state
        if state.stop is not None:
            self._done()
        elif state.has_work():
            if not self.stepwise:
                self._set_status("running")
        elif state.is_waiting():
            self._set_status("waiting")
        elif not self.finished:
            self._end(
                "failed",
                WorkflowRuntimeError(
                    f"run {self.run_id!r} of {self.workflow_name} stalled: {state.stall_reason()}"
                ),
            )

    def _set_status(self, status: str, detail: str = "") -> None:
        if status == self.status:
            return
        self.status = status
        self.ctx._status = status
        if status == "waiting":
            self._clock_pause()
        elif status == "running" and not self.stepwise:
            self._clock_run()
        if self.listeners:
            self._emit(RunStatusChanged(self.run_id, status, detail, time.time()))
        if not self.finished and self.checkpoint is not None:
            record = getattr(self.checkpoint, "status_changed", None)
            if record is not None:  # a paused run shows as waiting in the store too
                try:
                    record(self)
                except Exception as exc:
                    self._end("failed", exc)

    # -- running steps --------------------------------------------------------------------------

    def _pump(self) -> bool:
        """Start everything runnable. True if it stopped early to yield to the loop."""
        take = self.state.take
        start = self._start
        deadline = time.perf_counter() + 0.02
        while not self.finished:
            invocations = take()
            if not invocations:
                return False
            for inv in invocations:
                start(inv)
                if self.finished:
                    return False
            if time.perf_counter() > deadline:
                return True
        return False

    def _fast_arguments(self, spec: StepSpec) -> Callable[[Event], tuple[Any, ...]] | None:
        """For an async step without resources: a function making its positional arguments
        from the event, so the common call costs no loop over the parameters."""
        if not spec.is_async or spec.keyword_only or spec.resources:
            return None
        ctx = self.ctx
        kinds = tuple(kind for kind, _, _ in spec.params)
        if kinds == (EVENT,):
            return lambda ev: (ev,)
        if kinds == (CONTEXT, EVENT):
            return lambda ev: (ctx, ev)
        if kinds == (EVENT, CONTEXT):
            return lambda ev: (ev, ctx)
        return lambda ev: tuple(ev if kind is EVENT else ctx for kind in kinds)

    def _start(self, inv: Invocation) -> None:
        spec = self.specs[inv.step]
        if self.listeners:
            self._emit(StepStarted(self.run_id, inv.step, inv.event, inv.attempt, time.time()))
        inv.started = time.perf_counter()
        cv = contextvars.copy_context()
        cv.run(_current.set, inv)
        for setup in self.step_context:
            cv.run(setup)
        fast = self._fast_args[inv.step]
        args = None if fast is not None or not spec.is_async else self._arguments(spec, inv)
        try:
            if fast is not None:
                coro = spec.fn(self.workflow, *fast(inv.event))
            elif args is not None:
                coro = spec.fn(self.workflow, *args[0], **args[1])
            else:
                coro = self._invoke(spec, inv)
        except Exception as exc:  # a step that is not really async raised when called
            self._failed(inv, exc)
            return
        # Each invocation is a task from its first instruction, so code in the step that asks
        # for the current task (asyncio.timeout, TaskGroup, anyio) gets its own; it runs right
        # here until it first suspends, and most steps finish before that.
        if _EAGER_TASKS:
            task = asyncio.Task(coro, loop=self.loop, context=cv, eager_start=True)
            if task.done():
                if task.cancelled():
                    self._failed(inv, asyncio.CancelledError(f"step {inv.step!r} cancelled"))
                elif task.exception() is not None:
                    self._failed(inv, task.exception())  # type: ignore[arg-type]
                else:
                    self._succeeded(inv, task.result())
                return
        else:
            task = self._start_carried(inv, coro, cv)
            if task is None:
                return
        self.tasks[inv.id] = task
        task.add_done_callback(functools.partial(self._task_done, inv, inv.attempt))
        if spec.timeout is not None:
            self.step_timers[inv.id] = self.loop.call_later(
                spec.timeout, self._step_timed_out, inv, inv.attempt
            )

    def _start_carried(
        self, inv: Invocation, coro: Coroutine[Any, Any, Any], cv: contextvars.Context
    ) -> asyncio.Task[Any] | None:
        """Python 3.10/3.11: run the step now, as far as it goes without suspending, with the
        driver's carrier task as the current task (see ``_Carrier``). Returns the task that
        goes on with it if it suspended, else None (its result is already handled)."""
        carrier, task = self.carrier, self.carrier_task
        if task is None or carrier.state or task.done() or _cancelling(task):
            carrier = self.carrier = _Carrier()
            task = self.carrier_task = self.loop.create_task(carrier)  # type: ignore[arg-type]
        loop = self.loop
        outer = asyncio.current_task(loop)
        if outer is not None:
            _leave_task(loop, outer)
        _enter_task(loop, task)
        try:
            first = cv.run(coro.send, None)
        except StopIteration as stop:
            value, error = stop.value, None
        except Exception as exc:
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
        if error is None:
            self._succeeded(inv, value)
        else:
            self._failed(inv, error)
        return None

    def _arguments(
        self, spec: StepSpec, inv: Invocation, made: dict[str, Any] | None = None
    ) -> tuple[list[Any], dict[str, Any]] | None:
        """The call's arguments, or None when a resource has yet to be made (awaited);
        ``made`` holds resources already made for this call."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for kind, name, resource in spec.params:
            if kind is EVENT:
                value: Any = inv.event
            elif kind is CONTEXT:
                value = self.ctx
            elif made is not None and name in made:
                value = made[name]
            else:
                assert resource is not None
                found, value = self._resources.cached(resource)
                if not found:
                    return None
            if name in spec.keyword_only:
                kwargs[name] = value
            else:
                args.append(value)
        return args, kwargs

    async def _invoke(self, spec: StepSpec, inv: Invocation) -> Any:
        """The general path: make resources first, run sync steps on worker threads."""
        made = {name: await self._resources.get(res) for name, res in spec.resources}
        arguments = self._arguments(spec, inv, made)
        assert arguments is not None
        args, kwargs = arguments
        if spec.is_async:
            return await spec.fn(self.workflow, *args, **kwargs)
        cv = contextvars.copy_context()
        call = functools.partial(cv.run, spec.fn, self.workflow, *args, **kwargs)
        return await self.loop.run_in_executor(self._executor(), call)

    def _executor(self) -> ThreadPoolExecutor:
        if self.executor is None:
            from concurrent.futures import ThreadPoolExecutor

            workers = sum(s.num_workers for s in self.specs.values() if not s.is_async)
            self.executor = ThreadPoolExecutor(
                max_workers=max(4, min(workers, 64)),
                thread_name_prefix=f"nw-{self.run_id}",
            )
        return self.executor

    def _task_done(self, inv: Invocation, attempt: int, task: asyncio.Future[Any]) -> None:
        if self.tasks.get(inv.id) is task:
            del self.tasks[inv.id]
        timer = self.step_timers.pop(inv.id, None)
        if timer is not None:
            timer.cancel()
        if task.cancelled():
            if not self.finished and inv.attempt == attempt:
                if inv.timed_out:
                    self._failed(inv, self._step_timeout_error(inv))
                else:
                    self._failed(inv, asyncio.CancelledError(f"step {inv.step!r} was cancelled"))
            self._poke()
            return
        error = task.exception()
        if self.finished or inv.attempt != attempt:
            return  # the run ended, or this attempt timed out and another one runs
        if error is None:
            self._succeeded(inv, task.result())
        elif inv.timed_out and isinstance(error, asyncio.CancelledError):
            self._failed(inv, self._step_timeout_error(inv))
        else:
            self._failed(inv, error)
        self._poke()

    def _step_timed_out(self, inv: Invocation, attempt: int) -> None:
        self.step_timers.pop(inv.id, None)
        if self.finished or inv.attempt != attempt:
            return
        inv.timed_out = True
        task = self.tasks.get(inv.id)
        spec = self.specs[inv.step]
        if task is not None and spec.is_async:
            task.cancel()
        else:  # a thread cannot be stopped: give up on it and ignore its late result
            self.tasks.pop(inv.id, None)
            self._failed(inv, self._step_timeout_error(inv))
            self._poke()

    def _step_timeout_error(self, inv: Invocation) -> WorkflowTimeoutError:
        timeout = self.specs[inv.step].timeout
        return WorkflowTimeoutError(
            f"step {inv.step!r} took longer than its timeout of {timeout:g} s "
            f"(run {self.run_id!r}, attempt {inv.attempt})"
        )

    def _succeeded(self, inv: Invocation, value: Any) -> None:
        state = self.state
        spec = self.specs[inv.step]
        if value is not None:
            if not isinstance(value, Event):
                shown = repr(value)
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                self._failed(
                    inv,
                    WorkflowRuntimeError(
                        f"step {inv.step!r} returned {shown} ({type(value).__name__}), which is "
                        f"not an event; return an Event, or None to produce nothing"
                    ),
                    retry=False,
                )
                return
            typ = type(value)
            if typ not in spec.produces and not issubclass(typ, spec.produces):
                self._failed(
                    inv,
                    WorkflowRuntimeError(
                        f"step {inv.step!r} returned {typ.__name__}, which its return "
                        f"annotation does not declare ({spec.signature_text()})"
                    ),
                    retry=False,
                )
                return
            inv.produced.append(value)
            try:
                waiter = state.route(value, None, inv.step)
            except WorkflowRuntimeError as exc:
                self._failed(inv, exc, retry=False)
                return
            if waiter is not None:
                self._answer(waiter, value)
            questions = state.questions
            if questions and questions[-1] is value:  # it was an InputRequiredEvent
                self.publish(value)
        state.finish(inv, time.perf_counter() - inv.started)
        self.last = inv
        if self.listeners:
            self._emit(
                StepFinished(
                    self.run_id,
                    inv.step,
                    inv.event,
                    tuple(inv.produced),
                    time.perf_counter() - inv.started,
                    time.time(),
                )
            )
        if self.checkpoint is not None:
            self._checkpoint(inv)
        if self.settled:
            self._settle(inv)
        if state.stop is not None and not self.finished:
            self._done()

    def _failed(self, inv: Invocation, error: BaseException, retry: bool = True) -> None:
        spec = self.specs[inv.step]
        now = time.perf_counter()
        seconds = now - inv.started
        delay = None
        policy = spec.retry_policy if retry else None
        if policy is not None:
            try:
                if inv.attempt == 1:
                    inv.first_started = inv.started  # retries count from the first attempt
                delay = policy.next(now - inv.first_started, inv.attempt, error)
            except Exception as exc:  # a broken policy must not hide the step's error
                logger.warning("retry policy of step %r raised %r; not retrying", inv.step, exc)
        if self.listeners:
            will_retry = delay is not None
            self._emit(
                StepFailed(
                    self.run_id,
                    inv.step,
                    inv.event,
                    error,
                    inv.attempt,
                    will_retry,
                    seconds,
                    time.time(),
                )
            )
        if delay is not None:
            self.state.retry_later(inv, seconds)
            inv.timed_out = False
            self.timers[inv.id] = self.loop.call_later(max(0.0, delay), self._retry_now, inv)
            return
        _tidy_traceback(error, spec.fn)
        where = f"in step {inv.step!r} of {self.workflow_name} (run {self.run_id!r}"
        where += f", attempt {inv.attempt})" if inv.attempt > 1 else ")"
        _add_note(error, where)
        self.state.fail(inv, f"{type(error).__name__}: {error}", seconds)
        self._settle(inv)
        self._end("failed", error)

    def _retry_now(self, inv: Invocation) -> None:
        self.timers.pop(inv.id, None)
        if self.finished:
            return
        self.state.ready.append(inv)
        if self.stepwise:
            for again in self.state.take(limit=1):
                self._start(again)
        self._poke()

    # -- events ---------------------------------------------------------------------------------

    def _route(self, event: Event, target: str | None, origin: str | None) -> None:
        waiter = self.state.route(event, target, origin)
        if waiter is not None:
            self._answer(waiter, event)
        questions = self.state.questions
        if questions and questions[-1] is event:  # it was an InputRequiredEvent
            self.publish(event)

    def send(self, event: Event, target: str | None = None) -> None:
        inv = _current.get()
        if not self.in_loop_thread():
            self.loop.call_soon_threadsafe(self._send_from_thread, event, target, inv)
            return
        self._send(event, target, inv)

    def _send(self, event: Event, target: str | None, inv: Invocation | None) -> None:
        if self.finished:
            raise WorkflowRuntimeError(f"run {self.run_id!r} has {self.status}; event not sent")
        if inv is not None and inv.id in self.state.in_flight:
            inv.produced.append(event)
            self._route(event, target, inv.step)
        else:
            self._route(event, target, None)
        self._poke()

    def _send_from_thread(self, event: Event, target: str | None, inv: Invocation | None) -> None:
        try:
            self._send(event, target, inv)
        except WorkflowRuntimeError as exc:
            if not self.finished:
                self._end("failed", exc)

    def publish(self, event: Event) -> None:
        """Write ``event`` to the run's stream (questions also make the run wait for them)."""
        if not self.in_loop_thread():
            self.loop.call_soon_threadsafe(self.publish, event)
            return
        if isinstance(event, InputRequiredEvent) and not any(
            q is event for q in self.state.questions
        ):
            self.state.questions.append(event)
        self.stream_log.append(event)
        if self.listeners:
            self._emit(event)

    async def wait(self, inv: Invocation, waiter: Waiter, timeout: float | None) -> Event:
        """Suspend ``inv`` until an event satisfies ``waiter`` (``ctx.wait_for_event``)."""
        self.state.add_waiter(waiter)
        if waiter.question is not None:
            self.publish(waiter.question)
        future: asyncio.Future[Event] = self.loop.create_future()
        self.waiter_futures[waiter] = future
        inv.waiting = True
        self._settle(inv)
        self._poke()
        try:
            if timeout is None:
                event = await future
            else:
                try:
                    event = await asyncio.wait_for(future, timeout)
                except asyncio.TimeoutError:
                    raise WorkflowTimeoutError(
                        f"step {inv.step!r} waited more than {timeout:g} s for "
                        f"{' | '.join(t.__name__ for t in waiter.types)}"
                    ) from None
        finally:
            self.waiter_futures.pop(waiter, None)
            inv.waiting = False
        if inv.waits is None:
            inv.waits = {}
        inv.waits[waiter.index] = event
        self.state.touch(inv)
        self.state.drop_waiter(waiter)
        return event

    def _answer(self, waiter: Waiter, event: Event) -> None:
        inv = self.state.in_flight.get(waiter.invocation)
        if inv is not None:
            inv.waiting = False
        future = self.waiter_futures.pop(waiter, None)
        if future is None or future.done():
            return
        if self.stepwise:
            self.resumable.append((waiter, future, event))
        else:
            future.set_result(event)

    # -- observers ------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``listener`` with every stream event and lifecycle record from now on."""
        self.listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self.listeners:
                self.listeners.remove(listener)

        return unsubscribe

    def _emit(self, item: Any) -> None:
        for listener in list(self.listeners):
            try:
                listener(item)
            except Exception:
                logger.exception(
                    "notebook_workflows: a listener of run %s failed; removing it", self.run_id
                )
                if listener in self.listeners:
                    self.listeners.remove(listener)

    # -- stepping -------------------------------------------------------------------------------

    def _settle(self, inv: Invocation) -> None:
        future = self.settled.pop(inv.id, None)
        if future is not None and not future.done():
            future.set_result(None)

    async def step(self) -> list[Event] | None:
        if self.finished:
            return None
        if not self.stepwise:
            raise WorkflowRuntimeError(
                "step() needs a run started with run(stepwise=True); this run runs freely"
            )
        if self.stepping:
            raise WorkflowRuntimeError("another step() of this run has not finished yet")
        state = self.state
        self.stepping = True
        self._clock_run()
        try:
            settled: asyncio.Future[None] = self.loop.create_future()
            if self.resumable:
                waiter, future, event = self.resumable.pop(0)
                inv = state.in_flight[waiter.invocation]
                mark = len(inv.produced)
                self.settled[inv.id] = settled
                future.set_result(event)
            else:
                started = state.take(limit=1)
                if not started:
                    if state.stop is not None:
                        self._done()
                        return None
                    if state.is_waiting():
                        asked = (
                            "; ".join(repr(q) for q in state.questions) or "an event from outside"
                        )
                        raise WorkflowRuntimeError(
                            f"run {self.run_id!r} is waiting for {asked}; answer it with "
                            f"handler.ctx.send_event(...) and call step() again"
                        )
                    self._update_status()  # fails the run with the reason it cannot go on
                    if self.error is not None:
                        raise self.error
                    return None
                inv = started[0]
                mark = 0
                self.settled[inv.id] = settled
                self._start(inv)
            if not settled.done():
                try:
                    await settled
                except asyncio.CancelledError:
                    self._end("cancelled", detail="step() was interrupted")
                    raise
            if state.failed is inv and self.error is not None:
                raise self.error
            return list(inv.produced[mark:])
        finally:
            self.stepping = False
            self._clock_pause()
            self._poke()

    def release(self) -> None:
        """Leave stepping: run the rest freely (``await handler`` after ``step()`` calls)."""
        if not self.stepwise or self.finished:
            return
        self.stepwise = False
        for _, future, event in self.resumable:
            if not future.done():
                future.set_result(event)
        self.resumable.clear()
        self._clock_run()
        self._poke()

    # -- ending ---------------------------------------------------------------------------------

    def _done(self) -> None:
        stop = self.state.stop
        assert stop is not None
        own_fields = set(type(stop).model_fields) - {"result"}
        result = stop if own_fields else stop.result
        self.state.clear_pending()
        self.publish(stop)
        self._end("done", result=result)

    def cancel(self, detail: str = "cancelled") -> None:
        self._end("cancelled", detail=detail)

    def abort(self, error: BaseException) -> None:
        """Fail the run with ``error`` (from the loop's thread or any other)."""
        if self.in_loop_thread():
            self._end("failed", error)
        else:
            self.loop.call_soon_threadsafe(self._end, "failed", error)

    def _end(
        self,
        status: str,
        error: BaseException | None = None,
        *,
        result: Any = None,
        detail: str = "",
    ) -> None:
        if self.finished:
            return
        if status != "done":
            self._settle_finished_tasks()
            if self.finished:  # one of them ended the run itself
                return
        self.finished = True
        self.ended_at = time.time()
        self._clock_pause()
        for handle in (*self.timers.values(), *self.step_timers.values()):
            handle.cancel()
        self.timers.clear()
        self.step_timers.clear()
        for task in list(self.tasks.values()):
            task.cancel()
        self.tasks.clear()
        for future in self.waiter_futures.values():
            future.cancel()
        for _, future, _ in self.resumable:
            future.cancel()
        if status == "cancelled":
            # whatever was running stays in flight with its input: resuming runs it again
            for inv in self.state.in_flight.values():
                inv.waiting = False
        self.error = error
        if not self.result.done():
            if status == "done":
                self.result.set_result(result)
            elif error is not None:
                self.result.set_exception(error)
            else:
                self.result.set_exception(
                    WorkflowCancelledError(
                        f"run {self.run_id!r} of {self.workflow_name} was "
                        f"cancelled" + (f": {detail}" if detail else "")
                    )
                )
        self._set_status(status, detail or (f"{type(error).__name__}: {error}" if error else ""))
        if self.checkpoint is not None:
            self._checkpoint(None)
        self._emit(_END)
        for future in self.settled.values():
            if not future.done():
                future.set_result(None)
        self.settled.clear()
        if self.executor is not None:
            self.executor.shutdown(wait=False)
        self._poke()

    def _settle_finished_tasks(self) -> None:
        """Record the steps that completed just before the run ends, whose done callbacks have
        not run yet: their store writes already happened, so their completion must be
        recorded too, or a resumed run would do them again."""
        for inv_id, task in list(self.tasks.items()):
            if task.done() and not task.cancelled() and task.exception() is None:
                inv = self.state.in_flight.get(inv_id)
                if inv is not None:
                    self._task_done(inv, inv.attempt, task)

    def _result_settled(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            # whoever awaited the run was cancelled (an interrupted cell, wait_for): so is it
            self._end("cancelled", detail="the awaiting code was cancelled")
        else:
            future.exception()  # a failure is shown by the handler; never "never retrieved"

    # -- checkpoints ----------------------------------------------------------------------------

    def _checkpoint(self, inv: Invocation | None) -> None:
        try:
            if inv is None:
                self.checkpoint.run_ended(self)
            else:
                self.checkpoint.step_completed(self, inv)
        except Exception as exc:
            if inv is not None and not self.finished:
                self._end("failed", exc)
            else:
                logger.exception(
                    "notebook_workflows: could not save the end of run %s", self.run_id
                )

    # -- run timeout ----------------------------------------------------------------------------

    def _clock_run(self) -> None:
        if self._budget is None or self._clock_since is not None or self.finished:
            return
        self._clock_since = self.loop.time()
        self._timeout_handle = self.loop.call_later(max(0.0, self._budget), self._timed_out)

    def _clock_pause(self) -> None:
        if self._clock_since is None or self._budget is None:
            return
        self._budget -= self.loop.time() - self._clock_since
        self._clock_since = None
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None

    def _timed_out(self) -> None:
        running = sorted({inv.step for inv in self.state.in_flight.values()})
        self._end(
            "failed",
            WorkflowTimeoutError(
                f"run {self.run_id!r} of {self.workflow_name} took longer than its timeout of "
                f"{self.timeout:g} s (time spent waiting for a human is not counted)"
                + (f"; still running: {', '.join(running)}" if running else "")
            ),
        )

    # -- threads --------------------------------------------------------------------------------

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread

    def read(self, fn: Callable[[], T]) -> T:
        """``fn()`` computed on the run's loop thread, so it sees a consistent state even when
        the run goes on in another thread (``run_sync``'s helper, a sync step)."""
        if self.in_loop_thread() or self.loop.is_closed() or not self.loop.is_running():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def compute() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the calling thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(compute)
        try:
            return future.result(timeout=10)
        except concurrent.futures.TimeoutError:  # the loop is blocked: read as it is
            return fn()


def _tidy_traceback(error: BaseException, fn: Callable[..., Any]) -> None:
    """Start the traceback at the user's step function: our frames above it are noise."""
    code = getattr(fn, "__code__", None)
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    if tb is not None:
        error.__traceback__ = tb


def _add_note(error: BaseException, note: str) -> None:
    notes = getattr(error, "__notes__", None)
    if notes and note in notes:
        return
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # pragma: no cover - Python 3.10
        error.__notes__ = [*(notes or []), note]  # type: ignore[attr-defined]
