"""The asyncio driver: carries out the reducer's commands and feeds back what happened.

It decides nothing. What asyncio reports (a step returned or raised, a timer fired) and what
user code asks (``ctx.send_event``, ``handler.step()``, ``cancel()``) become transitions; the
reducer folds them into the run's state and answers with commands, which this module carries
out in order: start an invocation, schedule a timer, publish to listeners, write a checkpoint,
finish the run. It also holds the clock: every transition is reduced with the time it
happened at, read here.

Design decisions worth knowing before changing anything here:

* Commands run from one queue, never re-entrantly: a step that runs eagerly while a command
  is carried out may send events, and what the reducer decides about them waits in the queue
  until the step has returned. A long eager stretch yields to the loop every 20 ms.
* Transitions that come from user code (a step after an ``await``, a notebook cell) leave
  their commands for the next turn of the loop rather than running other steps inside the
  caller; transitions from asyncio's own callbacks are carried out at once.
* The reducer calls no user code. When it needs an answer from some (a step's retry policy, a
  step's ``cache_key``) it asks with a command, which ``_reduce`` answers at once, reducing the
  answer in the same instant and putting its commands where the question was: the run goes
  exactly as if the reducer had called the code itself, and nothing else is folded between a
  question and its answer.
* Every transition is reduced on the loop's thread. Calls from other threads (sync steps, a
  cell while ``run_sync`` runs the run elsewhere) are handed to the loop and wait for its
  answer, so ``collect_events`` in a sync step sees a consistent state.
* Ending a run lets it clean up: running steps are cancelled and their ``finally:`` blocks run
  (a bounded wait) before the last checkpoint is written and the result is settled, so the
  store after ``await handler.cancel()`` is the one the last snapshot holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._frames import note_once, show_for_people
from .._resume_line import resume_line, say_how_to_go_on
from ..errors import (
    ContextSerdeError,
    WorkflowCancelledByUser,
    WorkflowCancelledError,
    WorkflowRuntimeError,
    WorkflowTimeoutError,
)
from ..events import Event, RunStatusChanged, StepStarted
from . import commands as C
from . import transitions as T
from .calls import NO_REPLY, DriverCalls
from .reducer import reduce
from .replay import input_key
from .state import FINISHED, Invocation, RunState, Waiter
from .tasks import StepRunner
from .unrecorded import give_unrecorded
from .view import current_invocation_var

if TYPE_CHECKING:
    from ..context import Context
    from ..workflow import Workflow

logger = logging.getLogger("notebook_workflows")
R = TypeVar("R")

STREAM_LOG_SIZE = 10_000
# How long an ending run waits for its cancelled steps to finish their clean-up.
CLEANUP_SECONDS = 5.0
HEARTBEAT = 0.25  # seconds between the loop's wake-ups in a notebook kernel (see _beat)
END = object()  # what listeners get once the run has ended and its last checkpoint is written
_new = tuple.__new__  # makes a transition on the hot path without NamedTuple's Python __new__
_REMOTE = T.RemoteStepReturned


class Driver(DriverCalls):
    """Runs one run on the running event loop."""

    def __init__(
        self,
        workflow: Workflow,
        ctx: Context[Any],
        state: RunState,
        *,
        checkpoint: Any = None,
        executor: Any = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.workflow = workflow
        self.workflow_name = type(workflow).__name__
        self.ctx = ctx
        self.state = state
        self.run_id: str = state.run_id or ""
        self.checkpoint = checkpoint
        # Not a status (that is state.status): the run has ended, its steps have cleaned up,
        # its last checkpoint is written and its result is settled.
        self.settled = False
        self.result: asyncio.Future[Any] = self.loop.create_future()
        self.result.add_done_callback(self._result_settled)
        self.ended: asyncio.Future[None] = self.loop.create_future()
        self.listeners: list[Callable[[Any], None]] = []
        self.end_listeners: list[Callable[[Any], None]] = []
        self.stream_log: deque[Event] = deque(maxlen=STREAM_LOG_SIZE)
        self.timers: dict[tuple[Any, ...], asyncio.TimerHandle] = {}
        self.waiter_futures: dict[Waiter, asyncio.Future[Event]] = {}
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.runner = StepRunner(
            self.loop, ctx, workflow._nw_resource_cache(), self._report, self.run_id, executor
        )
        self._pending: deque[Any] = deque()
        self._held = False  # a checkpoint is being written: commands wait (``_hold``)
        self._draining = False
        self._drain_scheduled = False
        self._cancelled: set[tuple[int, int]] = set()  # (invocation id, attempt) we cancelled
        self._step_future: asyncio.Future[Any] | None = None
        self._slot: Any = None  # the workflow's num_concurrent_runs semaphore, if any
        self._final_record: RunStatusChanged | None = None
        self._advance_scheduled = False
        self._heartbeat: asyncio.TimerHandle | None = None
        self._holds_slot = False
        self._execute: dict[type, Callable[[Any], None]] = {
            C.StartInvocation: self._start_invocation,
            C.CancelInvocation: self._cancel_invocation,
            C.ScheduleTimer: self._schedule_timer,
            C.CancelTimer: self._cancel_timer,
            C.ResolveWaiter: self._resolve_waiter,
            C.Publish: self._publish,
            C.WriteCheckpoint: self._write_checkpoint,
            C.ApplyStoreChanges: self._apply_store_changes,
            C.Settled: self._settled,
            C.FinishRun: self._finish,
            C.AdvanceSoon: self._advance_soon,
            C.ReplayStep: self._replay_step,
            C.NoteError: _note_error,
            C.LogError: lambda log: logger.error("notebook_workflows: %s", log.message),
            _Abort: lambda abort: self.dispatch(T.RunAborted(abort.error)),
        }

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def stepwise(self) -> bool:
        return self.state.stepwise

    @property
    def error(self) -> BaseException | None:
        return self.state.error

    @property
    def last(self) -> Invocation | None:
        return self.state.last

    @property
    def step_context(self) -> list[Callable[[], Any]]:
        return self.runner.step_context

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, *, continuing: bool) -> None:
        """Begin the run; raises (with nothing started) if its checkpoint refuses it at once.
        The store calls of its start (the lease, the first record) are made off the loop,
        and no step starts before they are done; if they fail, so does the run."""
        commands = self._reduce(T.RunStarted(continuing), time.time())
        ctx = self.ctx
        before = ctx._driver, ctx._state
        ctx._attach(self)
        opening = None
        if self.checkpoint is not None:
            try:
                opening = self.checkpoint.run_started(ctx)
            except BaseException:
                ctx._driver, ctx._state = before  # as if this run had never been asked for
                raise
            watch = getattr(self.checkpoint, "watch", None)
            if watch is not None:  # the run's owner lost it to another process: stop
                watch(self.abort)
        self._pending.extend(commands)
        if callable(opening):
            self._held = True  # no command is carried out before the run is the store's
            opened = self.loop.run_in_executor(None, opening)
            opened.add_done_callback(self._opened)
        from .._loop import in_notebook_kernel  # the sync bridge knows where it runs

        if in_notebook_kernel():
            self._beat()
        limit = getattr(self.workflow, "num_concurrent_runs", None)
        if limit:
            # at most ``limit`` runs of this workflow at once: this one waits for a turn
            self._slot = _run_slots(self.workflow, limit)
            self.loop.create_task(self._start_in_turn(self._slot))
        else:
            self._schedule_drain()

    def _beat(self) -> None:
        """In a notebook kernel, wake the loop four times a second while the run goes on: a
        kernel interrupt is only acted on when the loop wakes, and a run whose steps all wait
        (a long sleep, a slow call) would otherwise not stop until they return."""
        if not self.settled:
            self._heartbeat = self.loop.call_later(HEARTBEAT, self._beat)

    async def _start_in_turn(self, slot: asyncio.Semaphore) -> None:
        await slot.acquire()
        self._holds_slot = True
        if self.settled:
            self._release_slot()
            return
        self._schedule_drain()

    def _release_slot(self) -> None:
        if self._holds_slot:
            self._holds_slot = False
            self._slot.release()

    # -- transitions in -------------------------------------------------------------------------

    def dispatch(self, transition: Any, *, now: bool = False) -> Any:
        """Reduce ``transition`` (on the loop's thread) and carry out its commands: at once
        (``now``), or on the loop's next turn. Returns the reducer's reply, raising its error."""
        reply: Any = NO_REPLY
        at = time.time()
        commands = reduce(self.state, transition, at)
        if self.state.asked:  # (``_reduce`` inlined: this is the hot path)
            commands = self._answered(commands, at)
        for command in commands:
            if command.__class__ is C.Reply:
                reply = command
            else:
                self._pending.append(command)
        if self._pending and not self._draining:
            if now:
                self._drain()
            else:
                self._schedule_drain()
        if reply is NO_REPLY:
            return NO_REPLY
        if reply.error is not None:
            raise reply.error
        return reply.value

    def _reduce(self, transition: Any, now: float) -> list[Any]:
        """The reducer's commands for ``transition`` at ``now``, its questions to user code
        answered (``_answered``)."""
        commands = reduce(self.state, transition, now)
        if not self.state.asked:  # asked nothing (always, in a run with no policy, no key)
            return commands
        return self._answered(commands, now)

    def _answered(self, commands: list[Any], now: float) -> list[Any]:
        """``commands`` with each ``AskRetryPolicy`` or ``AskCacheKey`` replaced, where it
        stands, by the commands of its answer (reduced at the same ``now``)."""
        answered: list[Any] = []
        for command in commands:
            if isinstance(command, (C.AskRetryPolicy, C.AskCacheKey)):
                answered.extend(self._reduce(self._answer(command), now))
            else:
                answered.append(command)
        return answered

    def _answer(self, ask: C.AskRetryPolicy | C.AskCacheKey) -> Any:
        """Call the user code ``ask`` names; what it said, as the transition that answers."""
        spec = self.runner.specs[ask.step]
        if isinstance(ask, C.AskRetryPolicy):
            # typed for an Exception, it is asked about a CancelledError a step raised, too
            policy: Any = spec.retry_policy
            try:
                delay = policy.next(ask.elapsed, ask.attempt, ask.error)
            except Exception as exc:  # a broken policy must not hide the step's error
                note = f"(its retry policy {policy!r} raised {exc!r}, so it was not retried)"
                return T.RetryDecided(ask.inv_id, ask.attempt, None, note)
            return T.RetryDecided(ask.inv_id, ask.attempt, delay)
        try:
            key = input_key(spec.cache_key, ask.event)
        except Exception as exc:  # a key function that fails: the step runs and says why
            return T.InputKeyed(ask.inv_id, None, f"{type(exc).__name__}: {exc}")
        return T.InputKeyed(ask.inv_id, key)

    def call(self, transition: Any) -> Any:
        """``dispatch`` from any thread: another thread waits for the loop's answer."""
        if threading.get_ident() == self.thread:
            return self.dispatch(transition)
        if self.loop.is_closed():
            raise WorkflowRuntimeError(f"run {self.run_id!r} has ended; its event loop is closed")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def on_loop() -> None:
            try:
                future.set_result(self.dispatch(transition))
            except BaseException as exc:  # handed back to the calling thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(on_loop)
        return future.result()

    def _report(
        self, inv: Invocation, attempt: int, value: Any, error: BaseException | None
    ) -> None:
        if self.ctx.store._touched:  # values the step may have changed in place: record them
            try:
                self.ctx.store._settle(inv)
            except ContextSerdeError as refused:
                error = error or refused
        if error is None:
            if value.__class__ is _REMOTE:  # it ran in another process: what it did, too
                transition: Any = value
            else:
                transition = _new(T.InvocationReturned, (inv, attempt, value))
        elif isinstance(error, asyncio.CancelledError) and (inv.id, attempt) in self._cancelled:
            self._cancelled.discard((inv.id, attempt))
            transition = T.InvocationCancelled(inv, attempt, error)
        else:
            if not self.state.finished:
                self._report_done()  # record what completed just before this failure
            transition = T.InvocationFailed(inv, attempt, error)
        self.dispatch(transition, now=True)

    def _report_done(self) -> None:
        """Record the steps whose tasks finished just before the run is about to end, and
        whose done callbacks have not run yet: their store writes already happened, so their
        completion must be recorded too, or a resumed run would do them again. What the
        reducer decides about them waits (it must not start new steps before the end)."""
        for inv, attempt, task in self.runner.take_done():
            if task.cancelled():
                continue
            error = task.exception()
            if error is None:
                value = task.result()
                if value.__class__ is not T.RemoteStepReturned:
                    value = T.InvocationReturned(inv, attempt, value)
                self.dispatch(value)

    # -- carrying out commands ------------------------------------------------------------------

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.loop.call_soon(self._scheduled_drain)

    def _scheduled_drain(self) -> None:
        self._drain_scheduled = False
        if not self._draining:
            self._drain()

    def _drain(self) -> None:
        if self._held:
            return  # a checkpoint is being written: the commands wait for it
        self._draining = True
        pending = self._pending
        execute = self._execute
        deadline = time.perf_counter() + 0.02
        count = 0
        try:
            while pending:
                command = pending.popleft()
                execute[command.__class__](command)
                if self._held:
                    break  # carried on by ``_release`` once the checkpoint is written
                count += 1
                if not count & 63 and pending and time.perf_counter() > deadline:
                    self._schedule_drain()  # a long eager stretch: let the loop breathe
                    break
        except Exception as exc:
            logger.exception("notebook_workflows: internal error in run %s", self.run_id)
            self._draining = False
            self.dispatch(T.RunAborted(exc), now=True)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop, let it through
            self._draining = False
            self.dispatch(T.CancelRequested(f"interrupted ({type(exc).__name__})"), now=True)
            raise
        finally:
            self._draining = False

    def _start_invocation(self, command: C.StartInvocation) -> None:
        if self.state.finished:
            return  # decided before the run ended (a cancel came in between): stays in flight
        lost = self._lost()
        if lost is not None:  # a checkpoint was lost: the run stops before any step starts
            self._pending.appendleft(command)
            self._pending.appendleft(_Abort(lost))
            return
        inv = command.inv
        if give_unrecorded(self.run_id, inv):  # ctx.once results a failing store lost
            self.state.touch(inv)
        if self.listeners:
            self._emit(StepStarted(self.run_id, inv.step, inv.event, inv.attempt, time.time()))
        self.runner.start(inv)

    def _replay_step(self, command: C.ReplayStep) -> None:
        """A rerun replays an invocation: its recorded store writes, then its events."""
        if self.state.finished:
            return
        writes = command.effects.writes
        if writes:
            self.ctx.store._apply_encoded(writes)
        self.dispatch(T.StepReplayed(command.inv, command.effects), now=True)

    def _cancel_invocation(self, command: C.CancelInvocation) -> None:
        inv = command.inv
        task = self.runner.task_of(inv)
        if task is not None and not task.done():
            self._cancelled.add((inv.id, inv.attempt))
            task.cancel()

    def _schedule_timer(self, command: C.ScheduleTimer) -> None:
        old = self.timers.pop(command.key, None)
        if old is not None:
            old.cancel()
        self.timers[command.key] = self.loop.call_later(command.delay, self._fire, command.key)

    def _cancel_timer(self, command: C.CancelTimer) -> None:
        handle = self.timers.pop(command.key, None)
        if handle is not None:
            handle.cancel()

    def _fire(self, key: tuple[Any, ...]) -> None:
        self.timers.pop(key, None)
        if key[0] == "run":
            self._report_done()
        self.dispatch(T.TimerFired(key), now=True)

    def _resolve_waiter(self, command: C.ResolveWaiter) -> None:
        future = self.waiter_futures.pop(command.waiter, None)
        if future is not None and not future.done():
            future.set_result(command.event)

    def _publish(self, command: C.Publish) -> None:
        item = command.item
        if command.stream:
            self.stream_log.append(item)
        elif item.__class__ is RunStatusChanged and item.status in FINISHED:
            # the run's end is announced once it has ended: clean-up done, result settled
            self._final_record = item
            return
        if self.listeners:
            if command.inv is None:
                self._emit(item)
                return
            # listeners learn which step wrote it, as if called from the step (current_step())
            token = current_invocation_var.set(command.inv)
            try:
                self._emit(item)
            finally:
                current_invocation_var.reset(token)

    def _write_checkpoint(self, command: C.WriteCheckpoint) -> None:
        """Take the checkpoint ``command`` asks for; the commands after it wait until it is
        in the store (the write itself is off the loop). A checkpoint that fails stops the
        run before anything queued after it is carried out."""
        if self.checkpoint is None:
            return
        try:
            written = self._checkpoint_hook(command)
        except Exception as exc:
            self._pending.appendleft(_Abort(exc))
            return
        if written is not None:
            self._hold(written)

    def _checkpoint_hook(self, command: C.WriteCheckpoint) -> Any:
        """Call the checkpoint's hook for ``command``: the future of its write, or None."""
        checkpoint = self.checkpoint
        if command.reason == "step":
            return checkpoint.step_completed(self.ctx, command.step)
        if command.reason == "replay":  # a rerun replayed the step
            replayed = getattr(checkpoint, "step_replayed", None)
            return (replayed or checkpoint.step_completed)(self.ctx, command.step)
        name = "journal_written" if command.reason == "journal" else "status_changed"
        hook = getattr(checkpoint, name, None)
        if hook is None:
            return None
        return hook(self.ctx, command.step) if name == "journal_written" else hook(self.ctx)

    def _hold(self, written: concurrent.futures.Future[None]) -> None:
        """Carry out no more commands until ``written`` is done (its record in the store)."""
        if written.done():
            self._release(written)
            return
        self._held = True

        def done(future: concurrent.futures.Future[None]) -> None:  # in the writer's thread
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(self._release, future, True)

        written.add_done_callback(done)

    def _release(self, written: concurrent.futures.Future[None], later: bool = False) -> None:
        self._held = False
        error = written.exception()
        if error is not None:
            self._pending.appendleft(_Abort(error))
        if later and not self._draining:
            self._drain()

    def _opened(self, opened: asyncio.Future[None]) -> None:
        """The run's start is in the store (or could not be): its commands go on, or the run
        fails with the store's error (``RunOwnedError`` if another process owns it)."""
        self._held = False
        error = None if opened.cancelled() else opened.exception()
        if error is not None:
            self._pending.appendleft(_Abort(error))
        if not self._draining:
            self._drain()

    def _lost(self) -> BaseException | None:
        lost = getattr(self.checkpoint, "lost", None)
        return lost() if lost is not None else None

    def _apply_store_changes(self, command: C.ApplyStoreChanges) -> None:
        self.ctx.store._merge(command.stored, command.deleted)

    def _advance_soon(self, command: C.AdvanceSoon) -> None:
        if not self._advance_scheduled:
            self._advance_scheduled = True
            self.loop.call_soon(self._advance)

    def _advance(self) -> None:
        self._advance_scheduled = False
        if not self.state.finished:
            self.dispatch(T.Advanced(), now=True)

    def _settled(self, command: C.Settled) -> None:
        future = self._step_future
        if future is not None and not future.done():
            future.set_result(command)

    # -- ending ---------------------------------------------------------------------------------

    def _finish(self, command: C.FinishRun) -> None:
        self.ended_at = time.time()
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for future in self.waiter_futures.values():
            future.cancel()
        self.waiter_futures.clear()
        if command.status == "failed" and command.error is not None:
            self._explain_failure(command.error, command.failed)
        alive = self.runner.alive()
        for inv, attempt, task in alive:
            self._cancelled.add((inv.id, attempt))
            task.cancel()
        if alive:
            self.loop.create_task(self._finish_after([task for _, _, task in alive], command))
        else:
            self._complete(command)

    def _explain_failure(self, error: BaseException, failed: Invocation | None) -> None:
        """Say in ``error`` which step of which run raised it and, for a checkpointed run, the
        line that goes on: after fixing the step, or after a run that ran out of time."""
        if failed is not None:
            spec = self.runner.specs[failed.step]
            _explain(error, spec.fn, failed, self.workflow_name, self.run_id)
            what = "fix the step, then "
        elif isinstance(error, WorkflowTimeoutError):
            what = ""
        else:  # the store failed, or the engine did: their errors say what to do themselves
            return
        line = self._resume_line()
        if line is not None:
            say_how_to_go_on(error, line, what)

    async def _finish_after(self, tasks: list[asyncio.Task[Any]], command: C.FinishRun) -> None:
        """Let cancelled steps run their clean-up before the last checkpoint."""
        _, pending = await asyncio.wait(tasks, timeout=CLEANUP_SECONDS)
        if pending:
            logger.warning(
                "notebook_workflows: run %s ended, but %d step(s) did not stop within %g s "
                "of being cancelled",
                self.run_id,
                len(pending),
                CLEANUP_SECONDS,
            )
        self._complete(command)

    def _complete(self, command: C.FinishRun) -> None:
        """Write the run's end (off the loop, which goes on meanwhile), then settle it."""
        if self.checkpoint is None:
            self._settle(command)
            return
        try:
            rest = self.checkpoint.run_ended(self.ctx)
        except Exception as exc:
            self._settle(self._end_not_saved(command, exc))
            return
        if not callable(rest):  # a hook object that wrote everything itself
            self._settle(command)
            return
        self.loop.create_task(self._complete_off_loop(rest, command))

    async def _complete_off_loop(self, rest: Callable[[], None], command: C.FinishRun) -> None:
        try:
            await self.loop.run_in_executor(None, rest)
        except Exception as exc:
            command = self._end_not_saved(command, exc)
        self._settle(command)

    def _end_not_saved(self, command: C.FinishRun, exc: Exception) -> C.FinishRun:
        """The run's end could not be written: what the reducer says of it (``EndNotSaved``),
        carried out; the result settles as ``FinishRun`` said unless it says otherwise."""
        for command_ in self._reduce(T.EndNotSaved(exc), time.time()):
            if command_.__class__ is C.SettleRun:
                command = command._replace(status=command_.status, error=command_.error)
            elif command_.__class__ in (C.Publish, C.LogError):
                self._execute[command_.__class__](command_)
        return command

    def _settle(self, command: C.FinishRun) -> None:
        self.settled = True
        if not self.result.done():
            if command.status == "done":
                self.result.set_result(command.result)
            elif command.status != "cancelled" and command.error is not None:
                show_for_people(command.error)  # in a notebook: the user's frames, not ours
                self.result.set_exception(command.error)
            else:
                self.result.set_exception(self._cancelled_error(command.error))
        if self._step_future is not None and not self._step_future.done():
            self._step_future.set_result(None)
        if self._final_record is not None and self.listeners:
            self._emit(self._final_record)
        for listener in list(self.end_listeners):
            listener(END)
        self._release_slot()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self.runner.close()
        if not self.ended.done():
            self.ended.set_result(None)

    def _cancelled_error(self, error: BaseException | None) -> BaseException:
        """The error awaiting a cancelled run raises (the reducer wrote it: why, and what held
        it), with the line that resumes it. A cancel its user asked for (the monitor's Cancel,
        ``handler.cancel()``) shows in a notebook as that one line, with no traceback."""
        if error is None:  # not said by the reducer: a FinishRun made by hand
            error = WorkflowCancelledError(f"run {self.run_id!r} was cancelled")
        line = self._resume_line()
        if line is not None:
            say_how_to_go_on(error, line)
        one_line = None
        if isinstance(error, WorkflowCancelledByUser):
            one_line = str(error) + (f"; go on where it stopped with {line}" if line else "")
        show_for_people(error, one_line)
        return error

    def _resume_line(self) -> str | None:
        """The line that resumes this run, if it is checkpointed."""
        if not self.state.checkpointed:
            return None
        store = getattr(self.checkpoint, "store", None)
        try:
            return resume_line(self.workflow, self.run_id, store)
        except Exception:  # a note is not worth failing the run's end over
            logger.exception("notebook_workflows: no resume line for run %s", self.run_id)
            return None

    def _result_settled(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            # whoever awaited the run was cancelled (an interrupted cell, wait_for): so is it
            self.cancel("the awaiting code was cancelled")
        else:
            future.exception()  # a failure is shown by the handler; never "never retrieved"


class _Abort:
    """A queued ``RunAborted``: a checkpoint that failed while commands were carried out."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _note_error(command: C.NoteError) -> None:
    if hasattr(command.error, "add_note"):
        command.error.add_note(command.note)


def _explain(
    error: BaseException, fn: Callable[..., Any], inv: Invocation, workflow: str, run_id: str
) -> None:
    """Start the traceback at the user's step function (our frames above it are noise), and
    say in a note which step of which run raised it."""
    code = getattr(fn, "__code__", None)
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    if tb is not None:
        error.__traceback__ = tb
    where = f"in step {inv.step!r} of {workflow} (run {run_id!r}"
    where += f", attempt {inv.attempt})" if inv.attempt > 1 else ")"
    note_once(error, where)


def _run_slots(workflow: Any, limit: int) -> asyncio.Semaphore:
    """The semaphore that keeps ``workflow`` to ``limit`` runs at once on the running loop."""
    loop = asyncio.get_running_loop()
    slots = workflow.__dict__.setdefault("_nw_run_slots", {})
    slot = slots.get(loop)
    if slot is None:
        slot = slots[loop] = asyncio.Semaphore(limit)
    return slot
