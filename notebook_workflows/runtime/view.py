"""RunView: the read-only picture of a run that everything outside the engine reads.

The notebook face (graphs, the monitor, the handler's own rich display) never reaches into the
runtime's state or driver: it asks the handler for ``handler.view()`` and subscribes to
``handler.subscribe(listener)``. A view is a frozen copy, taken on the run's own event loop so
it is consistent even while the run goes on in another thread (``run_sync``): holding one
costs nothing to the run, and nothing done to it changes the run.

Store values are given as the store keeps them, tagged JSON (``serialization.encode``): that is
cheap to copy for every refresh of a monitor, and ``serialization.decode`` turns a value back
into the Python object when something wants to show it.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

from ..events import Event

__all__ = ["InvocationView", "QueuedEvent", "RunView", "StepCall", "current_step"]


@dataclass(frozen=True, slots=True)
class InvocationView:
    """One step invocation that has started and not completed."""

    id: int
    step: str
    event: Event
    attempt: int
    waiting: bool  # suspended in ctx.wait_for_event
    error: str | None  # "ErrorType: message" when it failed for good


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event waiting for a step; ``seq`` orders the queue (oldest first)."""

    seq: int
    step: str
    event: Event


@dataclass(frozen=True, slots=True)
class StepCall:
    """A completed step invocation: its input, the events it produced, and where it ran
    when not in the run's process (as ``StepFinished.where``)."""

    step: str
    event: Event
    produced: tuple[Event, ...]
    where: str = ""


@dataclass(frozen=True)
class RunView:
    """A consistent, read-only picture of one run (``handler.view()``)."""

    workflow: str
    run_id: str
    status: str  # "running" | "waiting" | "done" | "failed" | "cancelled"
    steps_done: int
    step_runs: dict[str, int]  # completed invocations per step
    step_seconds: dict[str, float]  # time spent per step, retries included
    flow: dict[tuple[str, str], int]  # (step, event type) produced, (event type, step) consumed
    running: tuple[str, ...]  # steps running now (one entry per invocation)
    waiting: tuple[str, ...]  # steps suspended in wait_for_event
    queued: dict[str, int]  # events waiting per step
    failed: dict[str, str]  # step -> "ErrorType: message"
    questions: tuple[str, ...]  # open questions, as their prefixes
    elapsed: float  # seconds since the run started (until it ended)
    # the richer parts, for displays
    finished: bool = False
    stepwise: bool = False
    checkpointed: bool = False  # the run writes a checkpoint after every step
    started_at: float = 0.0
    ended_at: float | None = None
    in_flight: tuple[InvocationView, ...] = ()
    queue: tuple[QueuedEvent, ...] = ()
    open_questions: tuple[Event, ...] = ()  # the InputRequiredEvents still unanswered
    last: StepCall | None = None  # the last completed invocation
    store: dict[str, Any] = field(default_factory=dict)  # key -> tagged JSON value
    log: tuple[Event, ...] = ()  # events written to the stream, oldest first (bounded)
    error: BaseException | None = None  # what a failed run failed with
    result: Any = None  # the result of a run that is done
    stalled: str = ""  # what holds a run that has nothing to run and waits for no human
    # completed invocations per step that a rerun replayed instead of calling (counted in
    # ``step_runs`` too): a step whose runs were all replayed did not run at all
    replayed: dict[str, int] = field(default_factory=dict)
    # in a rerun, why each step that was called was not replayed (its last call's reason)
    ran_because: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status == "done"


# The step invocation the calling code runs in: set by the driver in each invocation's own
# copy of the context variables, so it follows the step into tasks and threads it starts.
current_invocation_var: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "notebook_workflows_invocation", default=None
)
# The context of the run whose step is running (``Context.get_step_context()``); set once in
# the context every step of a run is started from, so it costs a step nothing.
current_context_var: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "notebook_workflows_context", default=None
)


def current_step() -> str | None:
    """The name of the step whose code is running here, or None outside of steps.

    A listener called for an event written to the stream learns this way which step wrote it.
    """
    inv = current_invocation_var.get()
    return inv.step if inv is not None else None
