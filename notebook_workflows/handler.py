"""WorkflowHandler: the one object a user holds for a run.

Await it for the result, iterate its stream, cancel it, step it, draw it, watch it. It is a thin
face over the driver: everything it reports is read from the run's explicit state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .events import Event

if TYPE_CHECKING:
    from ._driver import Driver
    from .context import Context
    from .graph import WorkflowGraph
    from .widgets import RunMonitor


@dataclass(frozen=True)
class RunStats:
    """What a run has done so far; ``handler.stats()`` (graphs and monitors draw from it)."""

    workflow: str
    run_id: str
    status: str
    steps_done: int
    step_runs: dict[str, int]  # completed invocations per step
    step_seconds: dict[str, float]  # time spent per step, retries included
    flow: dict[tuple[str, str], int]  # (step, event type) produced, (event type, step) consumed
    running: tuple[str, ...]  # steps running now (one entry per invocation)
    waiting: tuple[str, ...]  # steps suspended in wait_for_event
    queued: dict[str, int]  # events waiting per step
    failed: dict[str, str]  # step -> "ErrorType: message"
    questions: tuple[str, ...]  # open questions (InputRequiredEvent prefixes)
    elapsed: float  # seconds since the run started (until it ended)


class WorkflowHandler:
    """A run in progress (or finished). ``await handler`` gives the run's result."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

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

    def stats(self) -> RunStats:
        """A consistent picture of the run right now."""
        return self._driver.read(self._stats)

    def _stats(self) -> RunStats:
        driver = self._driver
        state = driver.state
        in_flight = list(state.in_flight.values())
        failed = state.failed
        return RunStats(
            workflow=driver.workflow_name,
            run_id=driver.run_id,
            status=driver.status,
            steps_done=state.steps_done,
            step_runs=dict(state.step_runs),
            step_seconds=dict(state.step_seconds),
            flow=state.flow(),
            running=tuple(inv.step for inv in in_flight if not inv.waiting and inv.error is None)
            if not driver.finished
            else (),
            waiting=tuple(inv.step for inv in in_flight if inv.waiting),
            queued={name: len(q) for name, q in state.queues.items() if q},
            failed={failed.step: failed.error or ""} if failed is not None else {},
            questions=tuple(str(q.get("prefix", "")) for q in state.questions),
            elapsed=(driver.ended_at or time.time()) - driver.started_at,
        )

    def done(self) -> bool:
        return self._driver.result.done()

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
        return self._driver.result.__await__()

    async def step(self) -> list[Event] | None:
        """Run exactly one step invocation (only with ``run(stepwise=True)``).

        Returns the events it produced, returned or sent (``[]`` for none), or ``None`` once
        the run has finished. The oldest queued event goes first.
        """
        return await self._driver.step()

    async def cancel(self) -> None:
        """Stop the run: running steps are cancelled, nothing new starts."""
        self._driver.cancel("cancelled with handler.cancel()")
        await asyncio.sleep(0)

    # -- observing ------------------------------------------------------------------------------

    async def stream_events(self, *, lifecycle: bool = True) -> AsyncIterator[Any]:
        """Everything the run reports, as it happens, until it ends.

        Events steps write with ``ctx.write_event_to_stream`` (and questions, and the final
        ``StopEvent``) are kept, so a late listener still gets them; the lifecycle records
        (``StepStarted``, ``StepFinished``, ``StepFailed``, ``RunStatusChanged``) come from the
        moment of the call on. ``lifecycle=False`` leaves them out.
        """
        from ._driver import _END

        driver = self._driver
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for event in list(driver.stream_log):
            queue.put_nowait(event)
        unsubscribe: Callable[[], None] | None = None
        if driver.finished:
            queue.put_nowait(_END)
        else:
            unsubscribe = driver.subscribe(queue.put_nowait)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if lifecycle or isinstance(item, Event):
                    yield item
        finally:
            if unsubscribe is not None:
                unsubscribe()

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

    # -- the notebook face (thin doors into graph.py and widgets.py) ----------------------------

    def draw(self) -> WorkflowGraph:
        """The graph of this run: counts, times, the running and the failed step."""
        from .graph import WorkflowGraph

        return WorkflowGraph.of_run(self)

    def monitor(self) -> RunMonitor:
        """A live widget for this run (see ``notebook_workflows.widgets.RunMonitor``)."""
        from .widgets import RunMonitor

        return RunMonitor(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """In a notebook: the status, and between steps the queue, the last step and the
        store. ``handler.monitor()`` is the live view."""
        from ._display import handler_html, handler_text

        return {"text/plain": handler_text(self), "text/html": handler_html(self)}

    def __repr__(self) -> str:
        from ._display import handler_text

        return handler_text(self).split("\n", 1)[0]
