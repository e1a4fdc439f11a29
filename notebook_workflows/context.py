"""Context: a run's runtime, as steps see it.

One ``Context`` belongs to one run (and to the runs that continue it). Steps use it to send
events, to collect or wait for them, to write to the run's stream and to keep state in
``ctx.store`` (``store.py``). The same object is ``handler.ctx`` outside the run: sending an
event from a notebook cell is the same call as sending it from a step. Every change to the run
goes to its driver as a transition; the context itself decides nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel

from .codec import gc_paused
from .errors import ContextSerdeError, ContextStateError, WorkflowRuntimeError
from .events import Event
from .runtime.state import RunState, Waiter
from .runtime.view import current_context_var, current_invocation_var
from .serialization import decode
from .serializers import BaseSerializer, JsonSerializer, PickleSerializer, serializer_name
from .store import Store, ThreadStore, encode_once

if TYPE_CHECKING:
    import asyncio

    from .retry_policy import RetryInfo
    from .runtime.driver import Driver
    from .workflow import Workflow

__all__ = [
    "BaseSerializer",
    "Context",
    "JsonSerializer",
    "PickleSerializer",
    "Store",
]

StateT = TypeVar("StateT", bound=BaseModel)


class Context(Generic[StateT]):
    """The runtime of one run: ``store``, sending, collecting and waiting for events.

    Steps receive it by annotating a parameter ``ctx: Context`` (``Context[MyState]`` for a
    typed store); outside the run it is ``handler.ctx``.
    """

    def __init__(self, workflow: Workflow, *, run_id: str | None = None) -> None:
        self._workflow = workflow
        specs = type(workflow)._step_specs()
        self._specs = specs
        state_type = type(workflow)._state_type()
        # the steps' Context[...] names the type, which this Context[StateT] cannot see
        self.store: Store[StateT] = Store(cast("type[StateT] | None", state_type))
        self._state = RunState(specs, run_id, type(workflow).__name__)
        self._driver: Driver | None = None

    @property
    def run_id(self) -> str | None:
        return self._state.run_id

    @property
    def status(self) -> str:
        """``"new"`` before the context ran, then the status of its (last) run."""
        return self._state.status

    @property
    def is_running(self) -> bool:
        """A run of this context is going on (it may be waiting for an answer)."""
        return self._driver is not None and not self._driver.settled

    def _attach(self, driver: Driver) -> None:
        """``driver`` runs this context now: its state is the run's state."""
        self._driver = driver
        self._state = driver.state
        self.store._reset_lock()

    def _for_sync_step(self, loop: asyncio.AbstractEventLoop) -> Context[StateT]:
        """What a sync step on the run's thread pool gets as ``ctx``: this context, sharing
        everything, but with a ``store`` of plain calls (``ThreadStore``): a ``def`` cannot
        await."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        # a sync step's store has the same methods, as plain calls: not a Store subclass
        view.store = ThreadStore(self.store, loop)  # type: ignore[assignment]
        return view

    @property
    def workflow(self) -> Workflow:
        return self._workflow

    # -- events ---------------------------------------------------------------------------------

    def send_event(self, event: Event, step: str | None = None) -> None:
        """Deliver ``event`` to every step that accepts its type, or only to ``step``.

        From inside a step the event counts as that step's output; from outside the run (a
        notebook cell, another thread) it is delivered just the same.
        """
        if not isinstance(event, Event):
            raise TypeError(f"send_event takes an Event, got {type(event).__name__}")
        self._require_driver("send_event").send(event, step)

    def write_event_to_stream(self, event: Event) -> None:
        """Publish ``event`` to ``handler.stream_events()`` (and to a monitor)."""
        if not isinstance(event, Event):
            raise TypeError(f"write_event_to_stream takes an Event, got {type(event).__name__}")
        self._require_driver("write_event_to_stream").publish(event)

    def collect_events(
        self, ev: Event, expected: Sequence[type[Event]], buffer_id: str | None = None
    ) -> list[Event] | None:
        """Buffer ``ev``; once events of every ``expected`` type have arrived, return them in
        the order of ``expected`` (and empty the buffer), else return ``None``."""
        inv = current_invocation_var.get()
        if inv is None:
            raise ContextStateError("collect_events can only be called from inside a step")
        driver = self._require_driver("collect_events")
        return driver.collect(inv, ev, expected, buffer_id)

    async def wait_for_event(
        self,
        event_type: type[Event] | tuple[type[Event], ...],
        waiter_event: Event | None = None,
        waiter_id: str | None = None,
        requirements: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Suspend this step until an event of ``event_type`` (matching ``requirements``)
        arrives, and return it. ``waiter_event`` (typically an ``InputRequiredEvent``) is
        written to the stream first: it is the question the answer responds to.

        The step continues where it awaited; it is not run again from its start. After a
        restore, a step re-runs and gets answers that had already arrived straight back.
        """
        inv = current_invocation_var.get()
        if inv is None:
            raise ContextStateError("wait_for_event can only be awaited inside a step")
        types = event_type if isinstance(event_type, tuple) else (event_type,)
        index = inv.wait_calls
        inv.wait_calls += 1
        if inv.waits is not None and index in inv.waits:
            return inv.waits[index]
        waiter = Waiter(inv.id, index, types, dict(requirements or {}), waiter_event)
        driver = self._require_driver("wait_for_event")
        return await driver.wait(inv, waiter, timeout)

    @staticmethod
    def get_step_context() -> Context[Any]:
        """The context of the step that is running, for code around a step (a decorator, a
        helper it calls) that was not handed ``ctx``. Raises ``WorkflowRuntimeError`` outside
        a step."""
        ctx = current_context_var.get()
        if ctx is None or current_invocation_var.get() is None:
            raise WorkflowRuntimeError(
                "Context.get_step_context() can only be called while a step runs"
            )
        return ctx

    def retry_info(self) -> RetryInfo:
        """Where the calling step stands in its retries: ``retry_number`` (0 on the first
        attempt), ``elapsed_seconds`` since the first attempt, and what the previous attempt
        raised and when (``last_exception``, ``last_failed_at``)."""
        from datetime import datetime, timezone

        from .retry_policy import RetryInfo

        inv = current_invocation_var.get()
        if inv is None:
            raise ContextStateError("ctx.retry_info() can only be called from inside a step")
        error = inv.last_error if isinstance(inv.last_error, Exception) else None
        return RetryInfo(
            retry_number=inv.attempt - 1,
            elapsed_seconds=max(0.0, inv.started - inv.first_started),
            last_exception=error if inv.attempt > 1 else None,
            last_failed_at=datetime.fromtimestamp(inv.failed_at, timezone.utc)
            if inv.attempt > 1 and inv.failed_at
            else None,
        )

    async def once(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` once for this step invocation, even across crashes.

        The first call runs it (awaiting it if it is async), records its result under ``key``
        in the step's checkpoint, and returns it. When the step runs again, because it was
        retried or because the process died and the run was resumed, the recorded result is
        returned without calling ``fn``::

            receipt = await ctx.once("charge-card", charge, order_id, amount)

        The result must be a value the store could save. Without a checkpoint store the
        record lives as long as the run. ``fn`` is called only once every checkpoint before it
        is in the store, and ``once`` returns only once its own record is; if the store fails
        then, ``once`` raises ``SnapshotError`` and the run stops (resuming it in the same
        process does not call ``fn`` again). Effects between the call and its record when the
        process dies (a crash in the middle of ``fn`` itself) are the one gap left: make such
        calls idempotent.
        """
        inv = current_invocation_var.get()
        if inv is None:
            raise ContextStateError("ctx.once can only be called from inside a step")
        if not isinstance(key, str) or not key:
            raise TypeError(f"ctx.once needs a non-empty name for the call, got {key!r}")
        journal = inv.journal
        if journal is not None and key in journal:
            return decode(journal[key], path=f"once[{key!r}]")
        driver = self._require_driver("once")
        await driver.once_ready(inv, key)  # every checkpoint before the call is in the store
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        encoded = encode_once(inv.step, key, result)
        await driver.journal(inv, key, encoded)  # returns once the record is in the store
        return decode(encoded, path=f"once[{key!r}]")

    # -- snapshots ------------------------------------------------------------------------------

    def to_dict(self, serializer: Any = None) -> dict[str, Any]:
        """The whole run as plain JSON data: store, queues, in-flight steps, buffers, waiters.

        Works inside a step (that step counts as in flight, so a restore runs it again), from
        the handler while the run goes on, and after it ended. ``json.dumps`` it as it is.
        ``serializer="pickle"`` (store values and events as pickles) exists only as an explicit
        opt-in, for values the JSON codec cannot hold; loading it then needs ``allow_pickle``.
        Without ``serializer``, the workflow's own (``Workflow(serializer=...)``), else JSON.
        The result shares the store's encoded values: write it out, do not edit it in place.
        """
        from .snapshot import snapshot_of

        if serializer is None:
            serializer = getattr(self._workflow, "serializer", None)
        name = serializer_name(serializer)
        driver = self._driver
        if driver is not None:
            return driver.read(lambda: snapshot_of(self, name))
        return snapshot_of(self, name)

    @classmethod
    def from_dict(
        cls,
        workflow: Workflow,
        data: Any,
        serializer: Any = None,
        *,
        allow_pickle: bool = False,
    ) -> Context[Any]:
        """Rebuild a context from ``to_dict()`` data; ``workflow.run(ctx=...)`` continues it.

        ``serializer=PickleSerializer()`` loads a context written with it; passing that object
        is the explicit permission to unpickle (``serializer="pickle"`` needs
        ``allow_pickle=True`` as well). Raises ``ContextSerdeError`` saying what is wrong: not a
        snapshot, an unknown format version, a snapshot of another workflow, a changed graph,
        an event class that no longer exists. Loading never runs code named by the data.
        """
        from .snapshot import restore_into

        name = serializer_name(serializer)
        # Passing the serializer object is itself the explicit opt-in, as in the peer; the
        # bare name "pickle" still needs allow_pickle=True.
        allow_pickle = allow_pickle or isinstance(serializer, PickleSerializer)
        if name == "pickle" and not allow_pickle:
            raise ContextSerdeError(
                "loading with PickleSerializer can run any code the snapshot's author chose; "
                "pass allow_pickle=True as well, only if you trust where it came from"
            )
        ctx: Context[Any] = cls(workflow)
        with gc_paused():  # tens of thousands of new containers for a big state: codec._text
            restore_into(ctx, data, allow_pickle=allow_pickle)
        return ctx

    # -- internals ------------------------------------------------------------------------------

    def _require_driver(self, what: str) -> Driver:
        driver = self._driver
        if driver is None or self._state.finished:
            state = "has finished" if self._state.finished else "is not running"
            raise WorkflowRuntimeError(
                f"{what}: run {self.run_id!r} {state}; start it with workflow.run(ctx=ctx)"
            )
        return driver

    def __repr__(self) -> str:
        return (
            f"<Context of {type(self._workflow).__name__}, run {self.run_id!r}, "
            f"{self.status}, store keys: {', '.join(self.store.keys()) or 'none'}>"
        )
