"""What the handler and the context ask of a run's driver, as methods the driver mixes in.

Each call becomes a transition for the reducer, made on the run's loop whichever thread asks:
``ctx.send_event``, ``write_event_to_stream``, ``collect_events``, ``wait_for_event`` and
``once``; ``handler.step()``, ``cancel()`` and the stepping run's release; listeners that
subscribe to the run; consistent reads of its state from other threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import WorkflowRuntimeError, WorkflowTimeoutError
from ..events import Event
from . import commands as C
from . import transitions as T
from .state import Invocation, RunState, Waiter
from .unrecorded import keep_unrecorded, once_not_recorded, once_refused
from .view import current_invocation_var

logger = logging.getLogger("notebook_workflows")
R = TypeVar("R")
NO_REPLY = object()  # what dispatch returns when the reducer gave no Reply
_new = tuple.__new__  # makes a transition on the hot path without NamedTuple's Python __new__


class DriverCalls:
    """The run's door for its handler and context (mixed into ``Driver``)."""

    if TYPE_CHECKING:  # what the mixin uses of Driver (driver.py sets and defines these)
        loop: asyncio.AbstractEventLoop
        thread: int
        state: RunState
        run_id: str
        checkpoint: Any
        listeners: list[Callable[[Any], None]]
        end_listeners: list[Callable[[Any], None]]
        waiter_futures: dict[Waiter, asyncio.Future[Event]]
        _step_future: asyncio.Future[Any] | None

        def dispatch(self, transition: Any, *, now: bool = False) -> Any: ...
        def call(self, transition: Any) -> Any: ...
        def _report_done(self) -> None: ...
        def _schedule_drain(self) -> None: ...
        def _checkpoint_hook(self, command: C.WriteCheckpoint) -> Any: ...

    def cancel(self, detail: str = "cancelled", by_user: bool = False) -> None:
        """Stop the run (on the loop's thread)."""
        if self.state.finished:
            return
        self._report_done()
        self.dispatch(T.CancelRequested(detail, by_user), now=True)

    def abort(self, error: BaseException) -> None:
        """Fail the run with ``error``, from the loop's thread or any other."""
        if self.in_loop_thread():
            self.dispatch(T.RunAborted(error), now=True)
        elif not self.loop.is_closed():  # (a closed loop drives nothing any more)
            with contextlib.suppress(RuntimeError):  # it closed just now
                self.loop.call_soon_threadsafe(self.dispatch, T.RunAborted(error))

    def send(self, event: Event, target: str | None = None) -> None:
        self.call(_new(T.EventSent, (event, target, current_invocation_var.get())))

    def publish(self, event: Event) -> None:
        """Write ``event`` to the run's stream (a question also makes the run wait for it)."""
        written = T.StreamWritten(event, current_invocation_var.get())
        if self.in_loop_thread():
            self.dispatch(written)
        else:
            self.loop.call_soon_threadsafe(self.dispatch, written)

    async def once_ready(self, inv: Invocation, key: str) -> None:
        """Before ``ctx.once`` makes its call: every checkpoint taken so far is in the store,
        so that no earlier record can still be lost once the call was made; raises (the call
        is not made) if the run's records were lost or the run has ended."""
        if not self.in_loop_thread():
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.once_ready(inv, key), self.loop)
            )
            return
        if self.checkpoint is None:
            return
        if self.state.finished:
            raise once_refused(self.run_id, inv.step, key, "the run has ended")
        ready = getattr(self.checkpoint, "ready", None)
        try:
            written = ready() if ready is not None else None
            if written is not None:
                await asyncio.wrap_future(written)
        except Exception as exc:
            why = f"a checkpoint before it was lost ({exc})"
            raise once_refused(self.run_id, inv.step, key, why) from exc

    async def journal(self, inv: Invocation, key: str, encoded: Any) -> None:
        """``ctx.once`` recorded a result: it returns once the record is in the store (the
        loop goes on meanwhile), so a crash after it never calls again. A record that cannot
        be written raises, naming the store's error; its result is kept in this process
        (``runtime.unrecorded``), so that resuming the run here does not call again."""
        if not self.in_loop_thread():
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.journal(inv, key, encoded), self.loop)
            )
            return
        written = None
        try:
            # the reducer answers with the checkpoint to write now, ahead of the queue
            write = self.dispatch(T.JournalWritten(inv, key, encoded))
            if write is not NO_REPLY:
                written = self._checkpoint_hook(write)
            if written is None and self.checkpoint is not None and self.state.finished:
                raise once_refused(self.run_id, inv.step, key, "the run has ended")
            if written is not None:
                await asyncio.wrap_future(written)
        except BaseException as exc:
            if self.checkpoint is None:
                raise
            # kept whether the write failed or the step was cancelled while it went on (the
            # run stopped for a failed write): a resume here then has the result either way
            keep_unrecorded(self.run_id, inv, key, encoded)
            if not isinstance(exc, Exception):
                raise
            raise once_not_recorded(self.run_id, inv.step, key, exc) from exc

    def collect(
        self, inv: Invocation, event: Event, expected: Any, buffer: str | None
    ) -> list[Event] | None:
        collect = _new(T.CollectRequested, (inv, event, expected, buffer))
        return self.call(collect)

    async def wait(self, inv: Invocation, waiter: Waiter, timeout: float | None) -> Event:
        """Suspend ``inv`` until an event satisfies ``waiter`` (``ctx.wait_for_event``)."""
        future: asyncio.Future[Event] = self.loop.create_future()
        self.waiter_futures[waiter] = future
        self.dispatch(T.WaitStarted(inv, waiter))
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
        except BaseException:
            self.waiter_futures.pop(waiter, None)
            if not self.state.finished:
                self.dispatch(T.WaitEnded(inv, waiter, None))
            raise
        self.dispatch(T.WaitEnded(inv, waiter, event))
        return event

    async def step(self) -> list[Event] | None:
        if self._step_future is not None:
            raise WorkflowRuntimeError("another step() of this run has not finished yet")
        future: asyncio.Future[Any] = self.loop.create_future()
        self._step_future = future
        try:
            reply = self.dispatch(T.StepRequested(), now=True)
            if reply is not NO_REPLY:
                return reply
            try:
                settled = await future
            except asyncio.CancelledError:
                self.cancel("step() was interrupted")
                raise
            if settled is None:
                return None
            inv = settled.inv
            if self.state.failed is inv and self.state.error is not None:
                raise self.state.error
            return list(settled.produced)
        finally:
            self._step_future = None

    def release(self) -> None:
        """Leave stepping: run the rest freely (``await handler`` after ``step()`` calls)."""
        if self.state.stepwise and not self.state.finished:
            if self.in_loop_thread():
                self.dispatch(T.SteppingReleased())
            else:
                self.loop.call_soon_threadsafe(self.dispatch, T.SteppingReleased())

    # -- observers ------------------------------------------------------------------------------

    def subscribe(
        self, listener: Callable[[Any], None], *, end: bool = False
    ) -> Callable[[], None]:
        """Call ``listener`` with every stream event and lifecycle record from now on (the
        run's last record is its final ``RunStatusChanged``); with ``end``, also with ``END``
        once the run has ended and its last checkpoint is written."""
        self.listeners.append(listener)
        if end:
            self.end_listeners.append(listener)
        self._observed(True)

        def unsubscribe() -> None:
            if listener in self.listeners:
                self.listeners.remove(listener)
                if listener in self.end_listeners:
                    self.end_listeners.remove(listener)
                if not self.listeners:
                    self._observed(False)

        return unsubscribe

    def _observed(self, observed: bool) -> None:
        if self.state.observed == observed or self.state.finished:
            return
        if self.in_loop_thread():
            self.dispatch(T.ListenersChanged(observed))
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.dispatch, T.ListenersChanged(observed))

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

    # -- threads --------------------------------------------------------------------------------

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread

    def read(self, fn: Callable[[], R]) -> R:
        """``fn()`` computed on the run's loop thread, so it sees a consistent state even when
        the run goes on in another thread (``run_sync``'s helper, a sync step)."""
        if self.in_loop_thread() or self.loop.is_closed() or not self.loop.is_running():
            return fn()
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

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
