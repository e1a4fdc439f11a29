"""Debugging one step call of a checkpointed run: ``Workflow.debug_step``.

``call = await workflow.debug_step(run_id)`` gives back the call of the step that failed: its
input event (``call.event``), the store as it was (``call.store``) and ``await call.run()``,
which calls the step again, in the cell, on a scratch copy of the run. Fix the step (re-run
the cell that defines the workflow class, or set the method on the class), call again, and
once it does what it should, ``await workflow.resume(run_id)`` goes on with the run.

Design decisions:

* Which call. Without ``at``, the call that failed, in the run's latest snapshot (a run that
  did not fail is refused, pointing at ``at=``). With ``at=n``, the call that was running at
  snapshot ``n``: the one ``resume(run_id, at=n)`` would run first, with the store as it was
  there. ``#3 after step 'load'`` in a history is the snapshot written when ``load`` returned,
  so ``at=3`` is the call that ran next. Several calls running at once (a fan-out): the one
  that failed, else the oldest; ``step=`` picks the oldest call of that step (without ``at``
  it must name the step that failed). Events still queued for a step count after the calls
  running. A call that had completed can be called again the same way: what it did then is
  in the ``calls`` of a later snapshot (``Snapshot.calls``), to set beside what it does now.
* The snapshot is loaded as ``resume`` loads it (``resume._load``), with the same checks (the
  workflow that ran it, a graph that still fits), and again for every ``run()``: each call
  gets a fresh scratch context, and the events in it are decoded with the classes their
  names find now (a re-run cell defines new ones).
* The step's current code. ``run()`` looks the class up again by its name (a re-run cell
  binds the name to a new class; its method runs, with the workflow's attributes copied) and
  reads again the steps of a class whose step attributes were replaced since they were read
  (``Cls.step = new``), so that a ``resume`` afterwards runs that code too.
* The step is called in the caller's task, not by the run's driver: an exception it raises
  reaches the cell as it was raised, its traceback ending in the step, so that ``%debug``
  opens there. No retries and no timeout: a person at a debugger stops the clock.
* Nothing reaches the run's store. A stand-in for the driver (``_Scratch``) keeps what the
  step sends and streams, checking each event as the run would (a step that does not exist,
  an event nobody takes); ``collect_events`` buffers into the scratch state; a recorded
  ``ctx.once`` result is handed back, a new one is kept in the scratch copy only; a
  ``wait_for_event`` whose answer had arrived gets it, any other is refused (nothing else
  runs to answer it).
"""

from __future__ import annotations

import asyncio
import copy
import html
import sys
import threading
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .._frames import for_people, users_frames
from .._loop import run_blocking
from ..errors import WorkflowRuntimeError, WorkflowStepDoesNotExistError
from ..events import Event
from ..runtime import routing
from ..runtime.state import Invocation, RunState
from ..runtime.tasks import StepRunner
from ..runtime.view import current_context_var, current_invocation_var
from .base import Snapshot, SnapshotStore
from .listing import printable
from .resume import _load, _store_for

if TYPE_CHECKING:
    from ..context import Context
    from ..step import StepSpec
    from ..workflow import Workflow

__all__ = ["StepCall", "StepResult", "debug_step"]


def debug_step(
    workflow: Workflow,
    run_id: str,
    *,
    store: Any = None,
    at: int | None = None,
    step: str | None = None,
) -> StepCall:
    """``workflow.debug_step(run_id, store=..., at=..., step=...)``: see the module docstring."""
    store = _store_for(workflow, store)
    snapshot = store.latest(run_id) if at is None else store.snapshot(run_id, at)
    data = snapshot.context
    if at is None:
        item = _failed_call(store, snapshot, data)
        if step is not None and item["step"] != step:
            raise WorkflowRuntimeError(
                f"the step that failed in run {run_id!r} is {str(item['step'])!r}, not "
                f"{step!r}: name the snapshot of a call of {step!r} with at="
            )
    else:
        item = _call_at(snapshot, data, step)
    if snapshot.workflow.rpartition(":")[2] == type(workflow).__qualname__:  # else _load says
        _spec_now(workflow, str(item["step"]), run_id, snapshot.seq)
    ctx, _ = _load(workflow, run_id, store, snapshot, "debug")
    inv = _invocation(ctx._state, item)
    return StepCall(workflow, store, snapshot, inv, ctx.store.to_dict(), item.get("error"))


# -- which call -----------------------------------------------------------------------------------


def _calls(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The calls a snapshot holds: those running (the one that failed first, then the oldest),
    then the events queued for a step, oldest first."""
    running = sorted(data.get("in_flight") or [], key=lambda c: (c.get("error") is None, c["seq"]))
    queued = sorted(data.get("queue") or [], key=lambda c: c["seq"])
    return [*running, *queued]


def _failed_call(
    store: SnapshotStore, snapshot: Snapshot, data: Mapping[str, Any]
) -> Mapping[str, Any]:
    failed = [c for c in data.get("in_flight") or [] if c.get("error") is not None]
    if failed:
        return failed[0]
    run_id, seq = snapshot.run_id, snapshot.seq
    running = sorted({str(c["step"]) for c in data.get("in_flight") or []})
    hint = (
        f"; at={seq} is the call of {_names(running)} that was running when it stopped"
        if running
        else ""
    )
    raise WorkflowRuntimeError(
        f"run {run_id!r} in {store!r} has no failed step: it is {snapshot.status} (its latest "
        f"snapshot is #{seq}). Name the snapshot whose step call to debug with at= (0 to "
        f"{seq}; store.history({run_id!r}) lists them){hint}"
    )


def _call_at(snapshot: Snapshot, data: Mapping[str, Any], step: str | None) -> Mapping[str, Any]:
    calls = _calls(data)
    where = f"snapshot {snapshot.seq} of run {snapshot.run_id!r}"
    if not calls:
        raise WorkflowRuntimeError(
            f"{where} has no step call running or waiting to run (the run was "
            f"{snapshot.status} there: {snapshot.describe()}); name another snapshot with at="
        )
    if step is None:
        return calls[0]
    for call in calls:
        if call["step"] == step:
            return call
    raise WorkflowRuntimeError(
        f"no call of step {step!r} was running or waiting to run at {where}; there "
        f"{'was' if len(calls) == 1 else 'were'} "
        + ", ".join(f"a call of {str(c['step'])!r}" for c in calls)
    )


def _names(steps: list[str]) -> str:
    return " and ".join(map(repr, steps)) if len(steps) < 3 else ", ".join(map(repr, steps))


def _invocation(state: RunState, item: Mapping[str, Any]) -> Invocation:
    """The scratch state's invocation of ``item`` (a call running in the snapshot, or an event
    queued there, made into the call that would take it), ready to run as a resume would."""
    routing.requeue_in_flight(state)  # answers that had arrived go to their calls (``waits``)
    state.status = "running"
    seq = item["seq"]
    for inv in state.in_flight.values():
        if inv.seq == seq:
            return inv
    for queued_seq, name, event in state.queued_events():
        if queued_seq == seq:
            state.next_id += 1
            inv = state.in_flight[state.next_id] = Invocation(state.next_id, name, event, seq)
            return inv
    raise WorkflowRuntimeError(f"the snapshot has no call with event number {seq}")  # damaged


# -- the step's code now --------------------------------------------------------------------------


def _workflow_now(workflow: Workflow) -> Workflow:
    """``workflow``, or a copy of it of the class its class's name is bound to now (a cell that
    defines the class again binds the name to a new class)."""
    cls = type(workflow)
    found: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    if (
        found is cls
        or not isinstance(found, type)
        or found.__qualname__ != cls.__qualname__
        or not hasattr(found, "_step_specs")
    ):
        return workflow
    fresh = copy.copy(workflow)
    try:
        object.__setattr__(fresh, "__class__", found)
    except TypeError as exc:
        raise WorkflowRuntimeError(
            f"{cls.__qualname__} was defined again with another layout ({exc}): call "
            f"debug_step again on an instance of the new class"
        ) from None
    return fresh


def _spec_now(workflow: Workflow, name: str, run_id: str, seq: int) -> StepSpec:
    """The step ``name`` as ``workflow``'s class defines it now (a step replaced on the class,
    ``Cls.step = new``, makes the class read its steps again: ``WorkflowMeta``)."""
    cls = type(workflow)
    specs = cls._step_specs()
    spec = specs.get(name)
    if spec is None:
        raise WorkflowStepDoesNotExistError(
            f"{cls.__qualname__} has no step {name!r} now, and the call of run {run_id!r} at "
            f"snapshot {seq} is a call of it (its steps: {', '.join(specs) or 'none'}); put "
            f"the step back to debug it (a method that replaces a step needs @step)"
        )
    return spec


# -- the scratch run ------------------------------------------------------------------------------


class _Scratch:
    """Stands in for the run's driver while one step is called on a scratch context: what a
    driver would route or publish, it keeps (checked as the run checks it); nothing is
    recorded and nothing else runs."""

    settled = False

    def __init__(self, state: RunState, inv: Invocation, seq: int) -> None:
        self.state = state
        self.inv = inv
        self.seq = seq  # the snapshot's number, for messages
        self.sent: list[tuple[Event, str | None]] = []
        self.streamed: list[Event] = []
        self.lock = threading.Lock()  # a sync step sends from a worker thread

    def send(self, event: Event, target: str | None = None) -> None:
        with self.lock:
            routing.route(self.state, event, target, self.inv.step)
            self.sent.append((event, target))

    def publish(self, event: Event) -> None:
        with self.lock:
            self.streamed.append(event)

    def collect(
        self, inv: Invocation, event: Event, expected: Any, buffer: str | None
    ) -> list[Event] | None:
        with self.lock:
            return routing.collect(self.state, inv, event, expected, buffer or inv.step)

    async def wait(self, inv: Invocation, waiter: Any, timeout: float | None) -> Event:
        wanted = " | ".join(t.__name__ for t in waiter.types)
        raise WorkflowRuntimeError(
            f"step {inv.step!r} waits for {wanted} here, and no answer had arrived by snapshot "
            f"{self.seq}: a debug call cannot wait (nothing else runs to answer); resume the "
            f"run to answer it there"
        )

    async def once_ready(self, inv: Invocation, key: str) -> None:
        return None  # nothing is recorded: the call is made at once

    async def journal(self, inv: Invocation, key: str, encoded: Any) -> None:
        inv.journal = {**(inv.journal or {}), key: encoded}  # the scratch copy's only

    def read(self, fn: Any) -> Any:
        return fn()


async def _call(ctx: Context[Any], spec: StepSpec, inv: Invocation) -> Any:
    """Call the step with ``inv``'s input in this task (a sync step on a worker thread), as
    the run's step runner calls it, with resources made as for the run."""
    workflow = ctx.workflow
    spec = replace(spec, executor=None)  # here, in this process: a debugger can reach it
    runner = StepRunner(
        asyncio.get_running_loop(), ctx, workflow._nw_resource_cache(), _ignore, inv.step
    )
    inv_token = current_invocation_var.set(inv)
    ctx_token = current_context_var.set(ctx)
    try:
        return await runner._invoke(spec, inv)
    finally:
        current_context_var.reset(ctx_token)
        current_invocation_var.reset(inv_token)
        runner.close()


def _ignore(*_: Any) -> None:
    """The runner's report of a call's end: ``_call`` awaits the call itself."""


def _emitted(state: RunState, inv: Invocation, value: Any) -> None:
    """Check what the step returned as the run would, and route it in the scratch state."""
    values = value if type(value) is list else () if value is None else (value,)
    for one in values:
        problem = routing.check_returned(state, inv, one)
        if problem is not None:
            raise problem
        routing.route(state, one, None, inv.step)


def _changes(
    before: Mapping[str, Any], after: Mapping[str, Any], values: Mapping[str, Any]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The keys set or changed (with their new values) and the keys deleted."""
    changed = {k: values[k] for k, v in after.items() if k not in before or before[k] != v}
    return changed, tuple(k for k in before if k not in after)


# -- what a person holds --------------------------------------------------------------------------


class StepCall:
    """One call of a step of a checkpointed run, as a snapshot keeps it.

    ``step``, ``event`` (its input), ``store`` (the run's store as it was: a read-only mapping
    of copies of its values), ``error`` (what the call raised in the run, for a failed call),
    ``run_id`` and ``seq`` (the snapshot). ``await call.run()`` calls the step's current code
    on a scratch copy of the run and returns a ``StepResult``; ``call.run_sync()`` does the
    same from plain synchronous code. Nothing is written to the run's store.
    """

    def __init__(
        self,
        workflow: Workflow,
        store: SnapshotStore,
        snapshot: Snapshot,
        inv: Invocation,
        values: dict[str, Any],
        error: str | None,
    ) -> None:
        self._workflow = workflow
        self._store = store
        self._snapshot = snapshot
        self._event_seq = inv.seq
        self.run_id: str = snapshot.run_id
        self.seq: int = snapshot.seq
        self.step: str = inv.step
        self.event: Event = inv.event
        self.attempt: int = inv.attempt
        self.store: Mapping[str, Any] = types.MappingProxyType(values)
        self.error: str | None = error

    async def run(self) -> StepResult:
        """Call the step's code as it is now on a scratch copy of the run at this snapshot.

        Returns what the step did (``StepResult``: what it returned, sent and streamed, and
        the store keys it changed); an exception the step raises is raised here as it is,
        its traceback ending in the step (``%debug`` opens there). Nothing is written to the
        run's store, and the run does not go on: ``workflow.resume(run_id)`` does that.
        """
        try:
            ctx, spec, inv, scratch = self._scratch()
            before = ctx.store._encoded()
        except Exception as error:  # a refusal names its cause: show the user's line, not ours
            raise for_people(error) from error.__cause__
        started = time.perf_counter()
        try:
            value = await _call(ctx, spec, inv)
        except Exception as error:  # the step's own, as it is: only our frames are left out
            error.__traceback__ = users_frames(error.__traceback__)
            raise
        finally:
            scratch.settled = True
        seconds = time.perf_counter() - started
        try:
            _emitted(ctx._state, inv, value)
            after = ctx.store._encoded()
            changed, deleted = _changes(before, after, ctx.store.to_dict())
        except Exception as error:
            raise error.with_traceback(users_frames(error.__traceback__)) from error.__cause__
        values = types.MappingProxyType(ctx.store.to_dict())
        sent = tuple(event for event, _ in scratch.sent)
        return StepResult(
            self.step, value, sent, tuple(scratch.streamed), changed, deleted, values, seconds
        )

    def run_sync(self) -> StepResult:
        """``run`` from plain synchronous code (a script, a plain cell), blocking until the
        step returns."""
        return run_blocking(self.run)

    def _scratch(self) -> tuple[Context[Any], StepSpec, Invocation, _Scratch]:
        """A fresh scratch context of this snapshot for the workflow as defined now, and the
        call in it, its driver a ``_Scratch``."""
        workflow = _workflow_now(self._workflow)
        spec = _spec_now(workflow, self.step, self.run_id, self.seq)
        ctx, _ = _load(workflow, self.run_id, self._store, self._snapshot, "debug")
        inv = _invocation(ctx._state, {"seq": self._event_seq})
        scratch = _Scratch(ctx._state, inv, self.seq)
        ctx._driver = scratch  # type: ignore[assignment]  # it has what a step asks of one
        return ctx, spec, inv, scratch

    def _lines(self) -> list[tuple[str, str]]:
        failed = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        lines = [("input", _short(self.event))]
        if self.error is not None:
            lines.insert(0, ("failed with", printable(self.error) + failed))
        shown = [f"{printable(k)}={_short(v, 60)}" for k, v in self.store.items()]
        lines.append(("store", ", ".join(shown) or "(empty)"))
        return lines

    def __repr__(self) -> str:
        head = (
            f"StepCall: step {printable(self.step)!r} of run {printable(self.run_id)!r} at "
            f"snapshot #{self.seq}"
        )
        body = [f"  {label}: {text}" for label, text in self._lines()]
        tail = "  await call.run() calls the step's current code on a scratch copy of the run"
        return "\n".join([head, *body, tail])

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(label)}</th>"
            f"<td style='text-align:left'><code>{html.escape(text)}</code></td></tr>"
            for label, text in self._lines()
        )
        return (
            f"<div><b>StepCall</b>: step <code>{html.escape(self.step)}</code> of run "
            f"<code>{html.escape(self.run_id)}</code> at snapshot #{self.seq}"
            f"<table>{rows}</table><small><code>await call.run()</code> calls the step's "
            f"current code on a scratch copy of the run; nothing is written to its store"
            f"</small></div>"
        )


@dataclass(frozen=True, repr=False)
class StepResult:
    """What one debug call of a step did, on a scratch copy of its run (none of it reached
    the run's store): ``returned`` (its return value: an event, a list of them, or None),
    ``sent`` (the events it sent with ``ctx.send_event``), ``streamed`` (those it wrote to the
    stream), ``store_changes`` (each key it set or changed in place, with its new value),
    ``deleted`` (the keys it deleted), ``store`` (the whole scratch store afterwards) and
    ``seconds``. ``emitted`` is every event it would hand on: those sent, then those
    returned."""

    step: str
    returned: Any
    sent: tuple[Event, ...]
    streamed: tuple[Event, ...]
    store_changes: Mapping[str, Any]
    deleted: tuple[str, ...]
    store: Mapping[str, Any]
    seconds: float

    @property
    def emitted(self) -> list[Event]:
        returned = self.returned
        values = returned if type(returned) is list else [] if returned is None else [returned]
        return [*self.sent, *values]

    def __repr__(self) -> str:
        lines = [f"StepResult of step {printable(self.step)!r}:"]
        lines.append(f"  returned: {_short(self.returned)}")
        if self.sent:
            lines.append(f"  sent: {', '.join(_short(e, 60) for e in self.sent)}")
        if self.streamed:
            lines.append(f"  streamed: {', '.join(_short(e, 60) for e in self.streamed)}")
        changed = [f"{printable(k)}={_short(v, 60)}" for k, v in self.store_changes.items()]
        changed += [f"{printable(k)} deleted" for k in self.deleted]
        lines.append(f"  store changes: {', '.join(changed) or 'none'}")
        lines.append("  (on a scratch copy: nothing was written to the run's store)")
        return "\n".join(lines)


def _short(value: Any, limit: int = 100) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters."""
    text = printable(repr(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"
