"""WorkflowHandler: the one object a user holds for a run.

Await it for the result, iterate its stream, cancel it, step it, draw it, watch it. It is a thin
face over the driver: everything it reports is read from the run's explicit state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any

from ._frames import for_people, note_once, show_for_people
from ._ports import notebook_face
from ._resume_line import resume_line, say_how_to_go_on
from .errors import WorkflowRuntimeError, WorkflowTimeoutError
from .events import Event, StopEvent
from .runtime.view import InvocationView, QueuedEvent, RunView, StepCall

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from .context import Context
    from .graph import WorkflowGraph
    from .runtime.driver import Driver
    from .widgets import RunMonitor


# ``handler.stats()`` returned this before ``view()`` existed; a view has every field it had.
RunStats = RunView


class WorkflowHandler:
    """A run in progress (or finished). ``await handler`` gives the run's result."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self._consumed = False  # stream_events() was read to its end

    # -- identity and state ---------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self._driver.run_id

    @property
    def ctx(self) -> Context[Any]:
        return self._driver.ctx

    @property
    def status(self) -> str:
        """``"running"``, ``"waiting"`` (for an event from outside, such as a human's answer),
        ``"done"``, ``"failed"`` or ``"cancelled"``."""
        return self._driver.status

    @property
    def steps_done(self) -> int:
        return self._driver.state.steps_done

    def view(self) -> RunView:
        """A consistent, read-only picture of the run right now (see ``runtime.view``)."""
        return self._driver.read(self._view)

    def stats(self) -> RunView:
        """The same as ``view()`` (its older name)."""
        return self.view()

    def _view(self) -> RunView:
        driver = self._driver
        state = driver.state
        in_flight = sorted(state.in_flight.values(), key=lambda inv: inv.seq)
        failed = state.failed
        finished = state.finished
        result = driver.result
        last = state.last
        return RunView(
            workflow=driver.workflow_name,
            run_id=driver.run_id,
            status=driver.status,
            steps_done=state.steps_done,
            step_runs=dict(state.step_runs),
            step_seconds=dict(state.step_seconds),
            flow=state.flow(),
            running=tuple(inv.step for inv in in_flight if not inv.waiting and inv.error is None)
            if not finished
            else (),
            waiting=tuple(inv.step for inv in in_flight if inv.waiting),
            queued={name: len(q) for name, q in state.queues.items() if q},
            failed={failed.step: failed.error or ""} if failed is not None else {},
            questions=tuple(str(q.get("prefix", "")) for q in state.questions),
            elapsed=(driver.ended_at or time.time()) - driver.started_at,
            finished=finished,
            stepwise=driver.stepwise and not finished,
            checkpointed=driver.checkpoint is not None,
            started_at=driver.started_at,
            ended_at=driver.ended_at,
            in_flight=tuple(
                InvocationView(inv.id, inv.step, inv.event, inv.attempt, inv.waiting, inv.error)
                for inv in in_flight
            ),
            queue=tuple(QueuedEvent(*item) for item in state.queued_events())
            if not finished
            else (),
            open_questions=tuple(state.questions) if not finished else (),
            last=StepCall(last.step, last.event, tuple(last.produced), last.where)
            if last
            else None,
            store=self.ctx.store._encoded(),
            log=tuple(driver.stream_log),
            error=state.error,
            stalled=state.stalled,
            replayed={k: n for k, n in state.step_replays.items() if n},
            ran_because=dict(state.ran_because),
            result=result.result()
            if driver.status == "done" and result.done() and not result.cancelled()
            else None,
        )

    @property
    def checkpoint_store(self) -> Any:
        """The snapshot store this run writes its checkpoints to (``run(checkpoint=store)``,
        ``resume``, ``fork``), or ``None`` when it writes none (or writes through checkpoint
        hooks of its own)."""
        return getattr(self._driver.checkpoint, "store", None)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the run runs on (``run_sync`` runs it on a private one)."""
        return self._driver.loop

    def add_done_callback(self, callback: Callable[[WorkflowHandler], Any]) -> None:
        """Call ``callback(handler)`` on the run's loop once the run has ended (at once, soon,
        if it already has)."""
        self._driver.result.add_done_callback(lambda _: callback(self))

    def request_cancel(self, detail: str = "cancelled") -> None:
        """Ask the run to stop, from any thread, without waiting (``await cancel()`` waits);
        awaiting the handler then raises ``WorkflowCancelledByUser``."""
        driver = self._driver
        if driver.in_loop_thread():
            driver.cancel(detail, True)
        else:
            driver.loop.call_soon_threadsafe(driver.cancel, detail, True)

    def done(self) -> bool:
        return self._driver.result.done()

    def is_done(self) -> bool:
        """The run has ended (llama-index-workflows' name for ``done()``)."""
        return self._driver.result.done()

    async def stop_event_result(self) -> StopEvent:
        """Wait for the run to end and return its ``StopEvent`` (raises the run's error if it
        did not end well)."""
        await self
        stop = self._driver.state.stop
        assert stop is not None
        return stop

    def get_stop_event(self) -> StopEvent | None:
        """The ``StopEvent`` that ended the run, once it is done; else None."""
        state = self._driver.state
        return state.stop if state.status == "done" else None

    def result(self) -> Any:
        """The result of a finished run (raises its error if it failed)."""
        return self._driver.result.result()

    def exception(self) -> BaseException | None:
        """The error a finished run failed with, else None."""
        future = self._driver.result
        if not future.done() or future.cancelled():
            return None
        return future.exception()

    # -- awaiting -------------------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Any]:
        self._driver.release()  # a stepwise run runs the rest freely once awaited
        try:
            return (yield from self._driver.result.__await__())
        except asyncio.CancelledError as exc:
            # An interrupted cell: the run stops too (whoever awaited it was cancelled, even
            # when the cancel was thrown into this await rather than into the run's future),
            # and the cancel goes on as it must, with a note for the person reading its
            # traceback (what ran, and the line that continues a saved run).
            self._explain_interrupt(exc)
            driver = self._driver
            if not driver.result.done():
                detail = "the awaiting code was cancelled"
                if driver.in_loop_thread():
                    driver.cancel(detail)
                else:
                    driver.loop.call_soon_threadsafe(driver.cancel, detail)
            raise

    def _explain_interrupt(self, error: BaseException) -> None:
        """Say on the cancel of an interrupted cell what ran and, for a checkpointed run, the
        line that goes on; in a notebook, show it without our frames."""
        state = self._driver.state
        done = f"{state.steps_done} step{'s' if state.steps_done != 1 else ''} done"
        note_once(
            error, f"run {self.run_id!r} of {self._driver.workflow_name} was cancelled ({done})"
        )
        if state.checkpointed:
            line = resume_line(self.ctx.workflow, self.run_id, self.checkpoint_store)
            say_how_to_go_on(error, line)
        show_for_people(error)

    async def step(self) -> list[Event] | None:
        """Run exactly one step invocation (only with ``run(stepwise=True)``).

        Returns the events it produced, returned or sent (``[]`` for none), or ``None`` once
        the run has finished. The oldest queued event goes first.
        """
        try:
            return await self._driver.step()
        except Exception as error:  # the step's own frames, or just this call's line
            raise for_people(error) from error.__cause__

    async def cancel(self) -> None:
        """Stop the run: running steps are cancelled, nothing new starts. Returns once the
        cancelled steps have run their clean-up (``finally:`` blocks) and the run's last
        checkpoint is written."""
        driver = self._driver
        self.request_cancel("cancelled with handler.cancel()")
        await asyncio.shield(driver.ended) if driver.in_loop_thread() else await asyncio.sleep(0)

    async def cancel_run(self, *, timeout: float = 5.0) -> None:
        """Cancel the run and wait (at most ``timeout`` seconds) until it has stopped;
        awaiting the handler then raises ``WorkflowCancelledByUser``."""
        self.request_cancel("cancelled with handler.cancel_run()")
        driver = self._driver
        if driver.in_loop_thread():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(driver.ended), timeout)

    async def send_event(self, event: Event, step: str | None = None) -> None:
        """Send ``event`` into the run (``handler.ctx.send_event``, awaitable)."""
        self.ctx.send_event(event, step)

    def _abort(self, error: BaseException) -> None:
        """Fail the run with ``error`` (from any thread)."""
        self._driver.abort(error)

    # -- observing ------------------------------------------------------------------------------

    async def stream_events(
        self, expose_internal: bool = False, *, lifecycle: bool = False
    ) -> AsyncIterator[Any]:
        """The events of the run as they happen, ending with its stop event.

        As in llama-index-workflows: the events steps write with ``ctx.write_event_to_stream``
        (questions too), then the ``StopEvent`` that ended the run, or, when it did not end
        well, a ``WorkflowFailedEvent``, ``WorkflowTimedOutEvent`` or
        ``WorkflowCancelledEvent`` (awaiting the handler then raises the error). Written
        events are kept, so a late listener still gets them. ``expose_internal=True`` adds a
        ``StepStateChanged`` for every step invocation that starts and ends;
        ``lifecycle=True`` adds this project's records (``StepStarted``, ``StepFinished``,
        ``StepFailed``, ``RunStatusChanged``) from the moment of the call on.

        The stream can be read to its end once: a second reader after that raises
        ``WorkflowRuntimeError``.
        """
        from .runtime.driver import END

        if self._consumed:
            raise WorkflowRuntimeError(
                f"the events of run {self.run_id!r} have already been streamed to the end; "
                f"a stream is read once (use handler.subscribe(listener) for several readers)"
            )
        driver = self._driver
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for event in list(driver.stream_log):
            queue.put_nowait(event)
        unsubscribe: Callable[[], None] | None = None
        if driver.settled:
            queue.put_nowait(END)
        else:
            unsubscribe = driver.subscribe(queue.put_nowait, end=True)
        try:
            while True:
                item = await queue.get()
                if item is END:
                    ending = self._ending_event()
                    if ending is not None:
                        yield ending
                    self._consumed = True
                    return
                if isinstance(item, Event):
                    if not isinstance(item, StopEvent):  # the stop comes last, above
                        yield item
                else:
                    if expose_internal:
                        internal = _step_state_changed(item)
                        if internal is not None:
                            yield internal
                    if lifecycle:
                        yield item
        finally:
            if unsubscribe is not None:
                unsubscribe()

    def _ending_event(self) -> StopEvent | None:
        """The last event of the stream: the stop, or the peer's event for a run that failed,
        timed out or was cancelled."""
        from .events import WorkflowCancelledEvent, WorkflowFailedEvent, WorkflowTimedOutEvent

        state = self._driver.state
        if state.status == "done":
            return state.stop
        error = state.error
        if state.status == "cancelled":
            return WorkflowCancelledEvent()
        if isinstance(error, WorkflowTimeoutError) and state.timed_out_run:
            return WorkflowTimedOutEvent(
                timeout=state.timeout or 0.0, active_steps=list(state.timed_out_run)
            )
        failed = state.failed
        exception = error if isinstance(error, Exception) else WorkflowRuntimeError(str(error))
        return WorkflowFailedEvent(
            step_name=failed.step if failed is not None else "",
            exception=exception,
            attempts=failed.attempt if failed is not None else None,
            elapsed_seconds=(failed.failed_at - failed.first_started)
            if failed is not None and failed.failed_at
            else None,
        )

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``listener(item)`` on the run's loop for every stream item from now on;
        returns a function that stops it. This is how monitors watch a run."""
        return self._driver.subscribe(listener)

    def add_step_context(self, setup: Callable[[], Any]) -> Callable[[], None]:
        """Call ``setup()`` inside the context of every step invocation that starts from now
        on, before the step runs (for context variables such as where output goes); returns
        a function that stops it."""
        hooks = self._driver.step_context
        hooks.append(setup)

        def remove() -> None:
            if setup in hooks:
                hooks.remove(setup)

        return remove

    # -- the notebook face (thin doors through the port ``_ports.NotebookFace``) -------------

    def draw(self, *, direction: str = "TB") -> WorkflowGraph:
        """The graph of this run: counts, times, the running and the failed step;
        ``direction="LR"`` lays a wide graph out left to right."""
        return notebook_face().run_graph(self, direction)

    def monitor(self) -> RunMonitor:
        """A live view of this run, to display in a notebook: ``display(handler.monitor())``,
        then ``await handler`` in the same cell.

        It updates in place while the run goes on (about ten times a second at most): the
        status, steps done and running, elapsed time; the graph with the running step marked
        and each step's runs and total time (the sum of its invocations); the store, changed
        keys marked; a timeline of step invocations; an event log; what the steps printed; an
        input box when the run asks a human (``InputRequiredEvent``); a Cancel button (and
        Step, for ``run(stepwise=True)``); and, for a checkpointed run that paused or ended, a
        form to edit a store value and fork the run. When the run ends the cell keeps a static
        picture of it, so a saved notebook shows the finished run on GitHub and in nbval.

        Made after the run ended, it shows the run as recorded: the timeline and one log line
        per snapshot from the run's checkpoint store, or a line saying that a run without
        checkpoints kept no record of its steps. See ``notebook_workflows.widgets.RunMonitor``
        for its parts."""
        return notebook_face().monitor(self)

    def export_html(self, path: str | os.PathLike[str]) -> Path:
        """Write this checkpointed run, as its store holds it, to ``path`` as one
        self-contained HTML page: summary, graph, timeline, every snapshot with its calls, the
        store at each snapshot, errors; nothing in it needs the network. Returns the path.
        See ``notebook_workflows.export_html`` for a run of any store."""
        store = self.checkpoint_store
        if store is None:
            raise ValueError(
                f"run {self.run_id!r} writes no checkpoints, so there is nothing to export: "
                f"run it with checkpoint=store (SQLiteStore(), MemoryStore(), ...)"
            )
        return notebook_face().export_html(store, self.run_id, path)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """In a notebook: the status, and between steps the queue, the last step and the
        store. ``handler.monitor()`` is the live view."""
        face = notebook_face()
        return {"text/plain": face.handler_text(self), "text/html": face.handler_html(self)}

    def __repr__(self) -> str:
        return notebook_face().handler_text(self).split("\n", 1)[0]


def _step_state_changed(record: Any) -> Any:
    """The peer's ``StepStateChanged`` for one of our step records, or None."""
    from .events import StepFailed, StepFinished, StepStarted, StepState, StepStateChanged

    if isinstance(record, StepStarted):
        state, output = StepState.RUNNING, None
    elif isinstance(record, StepFinished):
        state = StepState.NOT_RUNNING
        output = type(record.produced[-1]).__name__ if record.produced else None
    elif isinstance(record, StepFailed):
        state, output = StepState.NOT_RUNNING, None
    else:
        return None
    return StepStateChanged(
        name=record.step,
        step_state=state,
        worker_id=f"{record.step}-{record.attempt if hasattr(record, 'attempt') else 1}",
        input_event_name=type(record.event).__name__,
        output_event_name=output,
    )
