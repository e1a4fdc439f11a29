"""Resuming a checkpointed run: ``Workflow.resume(run_id, *, store=None, at=None)``.

What resuming does, by the status of the snapshot it starts from:

* ``running`` or ``waiting`` (the process died, the kernel restarted): the run goes on. The
  steps that had completed are in the snapshot as their output events, queued; the steps that
  were running are in flight with their input event and run again from their start. That is
  at-least-once execution: a step whose checkpoint had not been written when the process died
  runs twice, so a step with effects outside the run should be idempotent. The same goes for
  the store: a step that runs again finds what its interrupted attempt had already written
  (``ctx.store`` is shared by the steps running at once, and a checkpoint saves it whole).
  Writes made in one ``async with ctx.store.edit_state()`` block at the end of a step, or
  writes that set a value rather than add to it, make a re-run harmless.
* ``failed``: the failing step kept its input; fix its code (re-run the cell that defines the
  workflow class) and resume: that step is retried, nothing before it runs again.
* ``cancelled`` (``handler.cancel()``, a kernel interrupt): the run goes on where it stopped.
* a run paused for a human asks its question again: the step that asked runs again and asks,
  and an answer that had arrived before the checkpoint is handed straight back to it.
* ``done``: nothing runs and nothing is written. The handler finishes at once with the saved
  result (and streams the saved ``StopEvent``), so ``await workflow.resume(run_id)`` is a safe
  way to get the result of a run whatever state it is in.

A run that is going on in another process (or kernel) is refused at once with
``RunOwnedError`` naming its owner; ``force=True`` takes it over (for an owner known to be gone
or stuck). See ``recorder`` for the rules.

``at=n`` forks snapshot ``n``: the run continues under a new run id whose ``RunInfo.parent``
is the original run (and ``parent_seq`` is ``n``); the original's history is not touched.
``workflow.fork(run_id, at=n, store_edits={key: value})`` does the same with the store
changed first (``fork_run``), the way a person corrects a value and tries again from there.

The snapshot keeps the workflow's graph. Resuming with a graph that lost steps or event types
the snapshot uses is refused with the differences listed; new steps are fine. Changed step
bodies are fine too (that is how a failing step gets fixed) and are named: in one plain line
when they were edited in a cell of this notebook kernel, the documented way to fix a step, and
in a ``StepCodeChangedWarning`` when their code changed anywhere else (a module edited between
two processes, say).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._agent_tools import TOOL_STEPS, tool_functions
from .._run_ids import new_run_id
from ..codec import gc_paused
from ..context import Context
from ..errors import ContextSerdeError, SnapshotError, WorkflowRuntimeError
from ..snapshot import _check_graph, breaking_changes, code_changes, graph_changes, graph_of
from .base import SnapshotStore, StepCodeChangedWarning
from .edits import apply_store_edits
from .recorder import Recorder

if TYPE_CHECKING:
    from ..handler import WorkflowHandler
    from ..workflow import Workflow

__all__ = ["fork_run", "resume_call", "resume_run"]


def resume_run(
    workflow: Workflow,
    run_id: str,
    *,
    store: Any = None,
    at: int | None = None,
    force: bool = False,
    durability: str = "sync",
    replay: Any = None,
) -> WorkflowHandler:
    """``workflow.resume(run_id, store=..., at=...)``: see the module docstring. ``replay``
    (a ``runtime.replay.ReplayTable``, given by ``rerun``) makes the fork replay recorded
    calls instead of calling their steps; changed steps are then expected, not warned of."""
    name = type(workflow).__name__
    _need_loop(name, "resume")
    store = _store_for(workflow, store)
    snapshot = store.latest(run_id) if at is None else store.snapshot(run_id, at)
    with gc_paused():  # parsing and decoding a big state: one pause for both (codec._text)
        ctx, warn = _load(workflow, run_id, store, snapshot, "resume" if at is None else "fork")
    if replay is None:  # a rerun expects changed steps
        warn()
    ctx._state.replay = replay
    if ctx.status == "done":
        # nothing runs and nothing is written: the handler ends at once with the saved result
        return workflow._launch(ctx, ctx._state, True, None, False, False)
    if at is None:
        recorder = Recorder(store, continuing=True, force=force, durability=durability)
        return workflow._launch(ctx, ctx._state, True, None, False, recorder)
    recorder = Recorder(store, parent=(run_id, snapshot.seq), durability=durability)
    return workflow._launch(ctx, ctx._state, True, new_run_id(name), False, recorder)


def fork_run(
    workflow: Workflow,
    run_id: str,
    *,
    at: int | None = None,
    store_edits: Mapping[str, Any] | None = None,
    store: Any = None,
    durability: str = "sync",
) -> WorkflowHandler:
    """``workflow.fork(run_id, at=..., store_edits=...)``: a new run from snapshot ``at`` of
    ``run_id`` (its latest when ``None``), its store changed by ``store_edits`` first.

    Each edit is checked as ``ctx.store.set`` checks it; a refused one raises that same error
    (naming the key) and nothing is written: no new run, the original untouched. The fork's
    first snapshot records the edits (``"edits"``, see ``snapshot``). A snapshot where the run
    had ended well is refused: nothing would run from it.
    """
    name = type(workflow).__name__
    _need_loop(name, "fork")
    store = _store_for(workflow, store)
    snapshot = store.latest(run_id) if at is None else store.snapshot(run_id, at)
    ctx, warn = _load(workflow, run_id, store, snapshot, "fork")
    if ctx.status == "done":
        before = [s.seq for s in store.history(run_id) if s.status != "done"]
        raise SnapshotError(
            f"cannot fork run {run_id!r} at snapshot {snapshot.seq}: the run had ended there "
            f"(done), so nothing would run; fork an earlier snapshot"
            + (f" (at={before[-1]} is the last before its end)" if before else "")
        )
    edits = None
    if store_edits:
        try:
            edits = apply_store_edits(ctx, store_edits)
        except Exception as error:
            error.add_note(
                f"nothing was written: run {run_id!r} was not forked, its snapshots are as "
                f"they were"
            )
            raise
    warn()  # the fork goes ahead: say which steps have new code
    recorder = Recorder(store, parent=(run_id, snapshot.seq), durability=durability, edits=edits)
    return workflow._launch(ctx, ctx._state, True, new_run_id(name), False, recorder)


def _need_loop(name: str, what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise WorkflowRuntimeError(
            f"{name}.{what}() needs a running event loop: write `await workflow.{what}(...)` "
            f"in a notebook cell or an async function"
            + (
                ", or call `workflow.resume_sync(...)` from plain synchronous code"
                if what == "resume"
                else ""
            )
        ) from None


def _load(
    workflow: Workflow, run_id: str, store: SnapshotStore, snapshot: Any, what: str = "resume"
) -> tuple[Context[Any], Callable[[], None]]:
    """The context of ``snapshot``, checked against ``workflow`` (its class, its graph), and
    what to say about changed step code once the run goes ahead (``what``: resume, fork)."""
    name = type(workflow).__name__
    warn: Callable[[], None] = _nothing
    # the context with big store values still as text, where the store gives it that way
    raw_context = getattr(snapshot, "_raw_context", None)
    data = raw_context() if raw_context is not None else snapshot.context
    where = f"run {run_id!r} (snapshot {snapshot.seq} in {store!r})"
    saved = str(data.get("workflow", ""))
    if saved.rpartition(":")[2] != type(workflow).__qualname__:
        raise SnapshotError(
            f"cannot {what} {where}: it is a run of workflow {saved!r}, not of {name}; "
            f"{what} it with an instance of the workflow that ran it"
        )
    saved_graph = data.get("graph")
    if isinstance(saved_graph, dict):
        try:  # a store outside BaseStore is not checked when read (checkpoint.schema)
            _check_graph(saved_graph)
        except ContextSerdeError as exc:
            raise SnapshotError(f"cannot {what} {where}: {exc}") from exc
        graph = graph_of(type(workflow)._step_specs(), workflow)
        if breaking_changes(saved_graph, graph):
            raise SnapshotError(
                f"cannot {what} {where}: {name} has changed since, in ways the run depends "
                f"on:\n"
                + "\n".join(f"  - {line}" for line in graph_changes(saved_graph, graph))
                + "\nrestore the steps and event classes it used, or start a new run"
            )
        changed = code_changes(saved_graph, graph)
        if changed:
            warn = _new_code_said(workflow, changed, what, run_id, snapshot.seq, where)

    try:
        ctx = Context.from_dict(workflow, data)
    except ContextSerdeError as exc:
        raise SnapshotError(f"cannot {what} {where}: {exc}") from exc
    workflow._check_graph()
    return ctx, warn


def resume_call(workflow: Any, run_id: str, store: Any) -> str:
    """``Name().resume('run-id')`` as a person types it in a new cell to continue ``run_id``:
    with ``store=store`` unless a new instance finds ``store`` by itself: the default
    ``SQLiteStore()`` of this directory (or no store, for a run checkpointed through hooks)."""
    from .sqlite import DEFAULT_PATH, SQLiteStore

    name = type(workflow).__name__
    found = store is None or (
        isinstance(store, SQLiteStore) and store.path == DEFAULT_PATH.absolute()
    )
    return f"{name}().resume({run_id!r}{'' if found else ', store=store'})"


def _new_code_said(
    workflow: Workflow, changed: list[str], what: str, run_id: str, seq: int, where: str
) -> Callable[[], None]:
    """What to say, once the run goes ahead, about its steps whose code has changed.

    Editing a step in a notebook cell and resuming is how a failed step gets fixed: when every
    changed step (or the tools an agent's step calls) was defined in a cell of this kernel,
    that is said in one plain line under the cell. Code that changed anywhere else (a module
    edited between two processes, say) gets a ``StepCodeChangedWarning``, since nobody here
    may know it changed.
    """
    name = type(workflow).__name__
    specs = type(workflow)._step_specs()
    tools = tool_functions(workflow)

    def code_of(step: str) -> list[Any]:
        return list(tools) if tools and step in TOOL_STEPS else [specs[step].fn]

    steps = f"step{'s' if len(changed) > 1 else ''}"
    doing = "forking" if what == "fork" else "resuming"
    if all(_edited_here(fn) for step in changed for fn in code_of(step)):
        named = ", ".join(repr(step) for step in changed)
        line = (
            f"{doing} run {run_id!r} from snapshot {seq} with new code in {steps} {named} "
            f"(edited in this notebook); completed steps do not run again"
        )
        return lambda: print(line)

    def origin(step: str) -> str:
        if tools and step in TOOL_STEPS:
            return _tools_in(tools)
        return _defined_in(specs[step].fn)

    named = ", ".join(f"{step!r} ({origin(step)})" for step in changed)
    # Said in words, not as the temporary file a notebook cell runs from: the warning line
    # names the call, the message the steps and where their code now comes from.
    warning = StepCodeChangedWarning(
        f"{doing} {where} with new code in {steps} {named}: the new code runs from here on; "
        f"completed steps are not run again"
    )

    def warn() -> None:
        warnings.warn_explicit(warning, StepCodeChangedWarning, filename=f"{name}.{what}", lineno=1)

    return warn


def _edited_here(fn: Any) -> bool:
    """``fn`` was defined in a cell of this kernel (or of this IPython session)."""
    import inspect
    import os

    code = getattr(inspect.unwrap(fn), "__code__", None)
    filename = getattr(code, "co_filename", "") or ""
    # ipykernel runs a cell from a file in a directory named after the kernel's process
    return f"ipykernel_{os.getpid()}{os.sep}" in filename or filename.startswith("<ipython-input-")


def _nothing() -> None:
    """No warning to give."""


_default_stores: dict[str, SnapshotStore] = {}


def default_store() -> SnapshotStore:
    """The ``SQLiteStore()`` of the current directory, opened once and reused by every
    ``resume`` that names no store (a new connection per call would cost each resume)."""
    import os

    from .sqlite import SQLiteStore

    key = os.getcwd()
    store = _default_stores.get(key)
    if store is None or getattr(store, "closed", False):
        store = _default_stores[key] = SQLiteStore()
    return store


def _tools_in(tools: list[Any]) -> str:
    """The tools a tool-calling step calls, each with where its code comes from."""
    shown = ", ".join(f"{getattr(fn, '__name__', 'tool')} {_defined_in(fn)}" for fn in tools)
    return f"it calls the tools {shown}"


def _defined_in(fn: Any) -> str:
    """Where a step's code comes from, in words: a notebook cell, or a file."""
    import os

    filename = getattr(getattr(fn, "__code__", None), "co_filename", "") or ""
    if "ipykernel_" in filename or filename.startswith("<"):
        return "edited in a notebook cell"
    return f"edited in {os.path.relpath(filename) if filename else 'its module'}"


def _store_for(workflow: Workflow, store: Any) -> SnapshotStore:
    if store is None:
        own = getattr(workflow, "checkpoint", None)
        if isinstance(own, SnapshotStore):
            return own
        return default_store()
    if not isinstance(store, SnapshotStore):
        raise TypeError(
            f"store must be a snapshot store (SQLiteStore(), RedisStore(...), MemoryStore()), "
            f"got {type(store).__name__}"
        )
    return store
