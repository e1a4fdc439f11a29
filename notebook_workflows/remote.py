"""Sync steps that run in another process: what travels there, what they see, what comes back.

A sync step given an executor that is not a thread pool (a ``ProcessPoolExecutor``, Dask's
``client.get_executor()``, any ``concurrent.futures.Executor``) runs where nothing of the run
lives. Design decisions worth knowing before changing anything here:

* The call travels as bytes pickled here, before anything is submitted (with cloudpickle when
  it is installed, as it is with Dask, so classes defined in a notebook travel too; else with
  ``pickle``, and the step's class must be importable there). What cannot travel is found
  and named (the event, a resource, an attribute of the workflow) before anything is sent.
* Classes and functions that travel by value (defined in a notebook, not importable there)
  are pickled once per run, into a ``Shipment``'s head, not with every call: a call's bytes
  name them by their place in the head (pickle's persistent ids), and so do the outcome's on
  the way back. A worker process loads each head once and keeps it (``_HEADS``, keyed by its
  digest); rebuilding a pydantic class from its pickled state costs milliseconds, which
  every call used to pay on both sides. A head holds the classes as they were when first
  shipped in the run: class attributes changed while the run goes on are not seen remotely.
* The workflow travels as a copy without what belongs to this process: its checkpoint store,
  its executor and its resource cache.
* A head loaded in the process that shipped it (a Dask cluster of threads,
  ``LocalCluster(processes=False)``, or any executor running calls in this process) is the
  shipment's own objects, never unpickled: cloudpickle would hand back the very classes
  shipped and set their state again from the copy, leaving a workflow class whose step
  specs are copies the next run cannot read.
* Each call carries a nonce (a per-process random tag and a counter): Dask keys tasks by their
  content by default and would run two equal calls once; steps have effects, so every call
  is a task of its own. Dask's own executor is given ``pure=False`` besides (``submit``):
  hashing each call's bytes to name its task is work thrown away when no two calls are
  equal, a few hundred microseconds of the run's loop per call.
* The step gets a ``RemoteContext``: the store as it was when the step started (a copy), the
  run id, ``retry_info()`` and its invocation's ``ctx.once`` journal. Its store writes, the
  events it sends or writes to the stream and its new ``once`` records are recorded there and
  come back with its return value; the run applies them together (``RemoteStepReturned``),
  so the checkpoint after the step holds all of it. A step that raises changes nothing but
  its ``once`` journal. What needs the live run (``collect_events``, ``wait_for_event``)
  raises, naming the step and suggesting an async step.
* A run on Dask gets each ``ctx.once`` record while the step runs, and keeps it (a
  checkpointed run writes it) before ``once`` returns (``journal_line``): a driver that dies
  while the step runs loses nothing, and the resumed run's attempt reuses the records. So
  does a checkpointed run's process pool (over a loopback connection). On other executors,
  and on a process pool for runs without a checkpoint, the records come back with the
  step's outcome, so an attempt still running when the driver died loses its records with
  it.
* Dask starts a call again, from the same bytes, when the worker running it dies. A call is
  known to the run by its invocation and its call number (its nonce's counter), which its
  context carries. Before a ``once`` call that its journal does not answer, the context
  asks the run for the records the run holds for its invocation, so a call started again
  gets what its first start recorded and does not call again. The run refuses a call it no
  longer waits for (or a start of it that a newer one replaced), and ``once`` then raises
  instead of calling; so it does when the run cannot be asked (see ``journal_line``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import io
import itertools
import os
import pickle
import socket
import sys
import traceback
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from types import FunctionType
from typing import Any

from .errors import WorkflowRuntimeError
from .events import Event
from .journal_line import Line, LineError
from .serialization import decode
from .store import _MISSING, Store, StoreReads, encode_once

__all__ = ["RemoteContext", "RemoteStore", "Shipment", "run_remote", "submit"]

# Attributes of a workflow instance that belong to the process running it, never shipped.
_LOCAL_ATTRS = frozenset({"checkpoint", "executor", "_nw_resources", "_nw_run_slots"})


def dumps(obj: Any) -> bytes:
    """``obj`` as bytes another process can load: cloudpickle when installed, else pickle."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - installed with dask
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _pickler_type() -> type[pickle.Pickler]:
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - installed with dask
        return pickle.Pickler
    return cloudpickle.Pickler


class _Pickler:
    """Pickles with the objects of a head named by their place in it (a persistent id)."""

    _type: type[pickle.Pickler] | None = None

    @classmethod
    def dumps(cls, obj: Any, index: dict[int, int], missing: list[Any] | None = None) -> bytes:
        if cls._type is None:
            base = _pickler_type()

            def persistent_id(self: Any, found: Any) -> int | None:
                place = self.nw_index.get(id(found))
                if place is not None:
                    return place
                if self.nw_missing is not None and _travels_by_value(found):
                    self.nw_missing.append(found)
                return None

            cls._type = type("_HeadPickler", (base,), {"persistent_id": persistent_id})
        buffer = io.BytesIO()
        pickler: Any = cls._type(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.nw_index = index
        pickler.nw_missing = missing
        pickler.dump(obj)
        return buffer.getvalue()


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, known: tuple[Any, ...]) -> None:
        super().__init__(io.BytesIO(data))
        self._known = known

    def persistent_load(self, pid: Any) -> Any:
        return self._known[pid]


def _loads(data: bytes, known: tuple[Any, ...]) -> Any:
    return _Unpickler(data, known).load()


def _travels_by_value(obj: Any) -> bool:
    """Whether ``obj`` is a class or function another process cannot import by its name:
    one defined in ``__main__`` (a notebook), in a function, or in a module not imported."""
    if not isinstance(obj, (type, FunctionType)):
        return False
    name = getattr(obj, "__module__", None) or "__main__"
    return name == "__main__" or name not in sys.modules or "<locals>" in obj.__qualname__


def _code_names(code: Any) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names.extend(_code_names(const))
    return names


def _reachable(roots: list[Any]) -> list[Any]:
    """``roots`` and the classes and functions travelling by value that they use (a
    function's globals and closure, a class's attributes and bases): what a worker may send
    back, so the outcome names them too."""
    found: list[Any] = []
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if id(obj) in seen or not _travels_by_value(obj):
            continue
        seen.add(id(obj))
        found.append(obj)
        if isinstance(obj, FunctionType):
            scope = obj.__globals__
            todo.extend(scope[name] for name in _code_names(obj.__code__) if name in scope)
            for cell in obj.__closure__ or ():
                with contextlib.suppress(ValueError):  # an empty cell
                    todo.append(cell.cell_contents)
            todo.append(getattr(obj, "__wrapped__", None))
        else:
            todo.extend(vars(obj).values())
            todo.extend(obj.__bases__)
    return found


class Shipment:
    """The classes and functions travelling by value that a run's remote calls share,
    pickled once as a head (``key``: its digest). It grows when a call needs more."""

    def __init__(self) -> None:
        self.known: tuple[Any, ...] = ()
        self._index: dict[int, int] = {}
        self.head = dumps(())
        self.key = hashlib.blake2b(self.head, digest_size=16).digest()
        # every head this shipment made, as a process that loads it sees it (``_head``)
        self.loaded: dict[bytes, tuple[tuple[Any, ...], dict[int, int]]] = {}
        self._ship()

    def _ship(self) -> None:
        self.loaded[self.key] = (self.known, self._index)
        _SHIPPED[self.key] = self

    def pack(self, call: RemoteCall) -> tuple[bytes, bytes, bytes]:
        """``(body, key, head)``: the call's own bytes name what the head holds (a call
        that uses nothing travelling by value loads with plain ``pickle.loads(body)``)."""
        missing: list[Any] = []
        body = _Pickler.dumps(call, self._index, missing)
        if missing:
            new = [obj for obj in _reachable(missing) if id(obj) not in self._index]
            known = self.known + tuple(new)
            build_event_classes()  # the classes go whole, by value, only in a head
            head = dumps(known)  # raises before anything changes if it cannot travel
            self.known, self.head = known, head
            self._index = {id(obj): place for place, obj in enumerate(known)}
            self.key = hashlib.blake2b(head, digest_size=16).digest()
            self._ship()
            body = _Pickler.dumps(call, self._index)
        return body, self.key, self.head


# heads loaded in this (worker) process: digest -> (objects, their places by id)
_HEADS: dict[bytes, tuple[tuple[Any, ...], dict[int, int]]] = {}
_HEADS_KEPT = 32
# heads shipped from this process, while their run lasts: digest -> the shipment
_SHIPPED: weakref.WeakValueDictionary[bytes, Shipment] = weakref.WeakValueDictionary()


def _head(key: bytes, head: bytes) -> tuple[tuple[Any, ...], dict[int, int]]:
    shipped = _SHIPPED.get(key)
    if shipped is not None:  # a call run in the process that packed it: the objects as they are
        return shipped.loaded[key]
    loaded = _HEADS.get(key)
    if loaded is None:
        known = tuple(pickle.loads(head))
        loaded = (known, {id(obj): place for place, obj in enumerate(known)})
        while len(_HEADS) >= _HEADS_KEPT:
            _HEADS.pop(next(iter(_HEADS)), None)
        _HEADS[key] = loaded
    return loaded


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class RemoteStore(StoreReads):
    """``ctx.store`` of a step that runs in another process: a copy of the run's store as it
    was when the step started, with the plain calls a sync step makes on the run's own store
    too (``get``, ``set``, ``delete``, ``get_state``, ``set_state``, ``clear``).

    Values are checked and encoded as the run's store does (a typed state validates each
    field); what the step sets or deletes is applied to the run's store when it returns.
    """

    def __init__(self, state_type: Any, encoded: dict[str, Any]) -> None:
        self._state_type = state_type
        self._encoded_at_start = encoded
        self._store: Store[Any] = Store(state_type)
        self._store._load(encoded)
        self._store._changed = set()

    def __reduce__(self) -> Any:
        return (RemoteStore, (self._state_type, self._encoded_at_start))

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """A copy of the value at ``key``; ``default`` if missing, else ``KeyError``."""
        return self._store._get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Save ``value`` at ``key`` (refused at once if the store could not keep it)."""
        self._store._set(key, value)

    def delete(self, key: str) -> None:
        self._store._delete(key)

    def get_state(self) -> Any:
        """A copy of the whole state: the model of a typed state, else a dict."""
        return self._store.state

    def set_state(self, state: Any) -> None:
        """Replace the whole state (a model of the typed state's class, or a dict of keys)."""
        self._store._replace_state(state)

    def clear(self) -> None:
        """Empty the store (a typed state goes back to its defaults)."""
        self._store._replace_state(self._store._empty_state())

    def _changes(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        gone = object()
        changed = self._store._drain_changes(gone)
        stored = {k: v for k, v in changed.items() if v is not gone}
        return stored, tuple(k for k, v in changed.items() if v is gone)

    def __repr__(self) -> str:
        return f"<RemoteStore {', '.join(self.keys()) or '(empty)'}>"


class RemoteContext:
    """What a sync step running in another process gets as its ``ctx``.

    ``store`` (a ``RemoteStore``), ``send_event``, ``write_event_to_stream``, ``retry_info()``
    and ``once`` work as on the run's ``Context``, recorded here and applied to the run when
    the step returns. ``once`` is a plain call. What needs the live run raises, naming the step.
    """

    def __init__(
        self,
        step: str,
        run_id: str,
        store: RemoteStore,
        retry: tuple[int, float, Exception | None, float],
        journal: dict[str, Any],
        invocation: int = -1,
        line: Line | None = None,
    ) -> None:
        self.step = step
        self.run_id = run_id
        self.store = store
        self._retry = retry
        self._journal = dict(journal)
        self._invocation = invocation
        self._line = line
        self._call = -1  # the number of the call it travels with (``RemoteCall`` sets it)
        self._start = 0  # the number the run gave this start of the call (0: not asked yet)
        self._recorded: dict[str, Any] = {}
        self._effects: list[tuple[str, Event, str | None]] = []

    def __getstate__(self) -> dict[str, Any]:
        return {
            k: v for k, v in self.__dict__.items() if k not in ("_recorded", "_effects", "_start")
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start = 0
        self._recorded = {}
        self._effects = []

    def send_event(self, event: Event, step: str | None = None) -> None:
        """Deliver ``event`` (to every step that accepts it, or to ``step``) when this step
        returns."""
        if not isinstance(event, Event):
            raise TypeError(f"send_event takes an Event, got {type(event).__name__}")
        self._check_travels(event, "send_event")
        self._effects.append(("send", event, step))

    def write_event_to_stream(self, event: Event) -> None:
        """Publish ``event`` to the run's stream when this step returns."""
        if not isinstance(event, Event):
            raise TypeError(f"write_event_to_stream takes an Event, got {type(event).__name__}")
        self._check_travels(event, "write_event_to_stream")
        self._effects.append(("stream", event, None))

    def retry_info(self) -> Any:
        """Where this step stands in its retries, as ``Context.retry_info()`` says."""
        from .retry_policy import RetryInfo

        number, elapsed, error, failed_at = self._retry
        return RetryInfo(
            retry_number=number,
            elapsed_seconds=elapsed,
            last_exception=error,
            last_failed_at=datetime.fromtimestamp(failed_at, timezone.utc) if failed_at else None,
        )

    def once(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` once for this invocation, as ``Context.once`` does
        (here a plain call): a result recorded by an earlier attempt, or by an earlier start
        of this very call on a Dask worker that died, is returned without calling it. A new
        record reaches the run (its checkpoint, if it has one) before this returns when the
        run opened a line for it (any run on Dask, a checkpointed run on a process pool:
        ``journal_line``), else when this step returns or fails.

        Raises ``WorkflowRuntimeError``, without calling ``fn``, when the run cannot tell
        whether an earlier start of this call already made it, or no longer waits for it."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"ctx.once needs a non-empty name for the call, got {key!r}")
        if key not in self._journal and self._line is not None:
            self._journal.update(self._records_held(key))
        if key in self._journal:
            return decode(self._journal[key], path=f"once[{key!r}]")
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        encoded = encode_once(self.step, key, result)
        self._journal[key] = encoded
        line = self._line
        try:
            confirmed = line is not None and line.send(self._invocation, key, encoded)
        except LineError as exc:  # the run could not keep it: the step fails, naming why
            self._recorded[key] = encoded  # goes with the failure
            raise WorkflowRuntimeError(
                f"step {self.step!r} (run {self.run_id!r}): ctx.once({key!r}) made its call, "
                f"but the run could not record it: {exc}"
            ) from None
        if not confirmed:
            self._recorded[key] = encoded  # goes with the outcome
        return decode(encoded, path=f"once[{key!r}]")

    def _records_held(self, key: str) -> dict[str, Any]:
        """The records the run holds for this invocation (a call Dask started again after
        its worker died gets what its first start recorded); raises if there are none to be
        had, so that ``once`` does not call."""
        assert self._line is not None
        try:
            held, self._start = self._line.records_held(
                self._invocation, self._call, self._start, key
            )
        except LineError as exc:
            raise WorkflowRuntimeError(
                f"step {self.step!r} (run {self.run_id!r}) did not call ctx.once({key!r}): {exc}"
            ) from None
        return held

    def collect_events(self, *args: Any, **kwargs: Any) -> Any:
        raise self._needs_the_run("collect_events")

    def wait_for_event(self, *args: Any, **kwargs: Any) -> Any:
        # a plain def: a sync step calls it without await, and must hear about it at once
        raise self._needs_the_run("wait_for_event")

    def to_dict(self, *args: Any, **kwargs: Any) -> Any:
        raise self._needs_the_run("to_dict")

    def _needs_the_run(self, what: str) -> WorkflowRuntimeError:
        return WorkflowRuntimeError(
            f"step {self.step!r} (run {self.run_id!r}) runs in another process, where "
            f"ctx.{what} cannot work: it needs the live run. Do it in an async step (async "
            f"steps run on the run's own event loop), or keep this step on the thread pool"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"step {self.step!r} runs in another process: its ctx offers store, send_event, "
            f"write_event_to_stream, retry_info and once, not {name!r}; use an async step "
            f"for what needs the live run"
        )

    def _check_travels(self, event: Event, what: str) -> None:
        try:
            dumps(event)
        except Exception as exc:
            raise WorkflowRuntimeError(
                f"step {self.step!r}: ctx.{what}({_short(event)}) cannot travel back to the "
                f"run: the event cannot be pickled ({type(exc).__name__}: {exc})"
            ) from None


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


# -- the call, both ways --------------------------------------------------------------------------


class RemoteCall:
    """One step invocation as it travels: the function, its arguments (the ``RemoteContext``
    among them), and a nonce that makes every call a distinct task."""

    def __init__(
        self,
        step: str,
        fn: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        ctx: RemoteContext | None,
    ) -> None:
        self.step = step
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.ctx = ctx
        self.nonce = (_PROCESS_TAG, next(_CALLS))
        if ctx is not None:  # how the call names itself to the run (``RemoteContext.once``)
            ctx._call = self.nonce[1]

    @property
    def number(self) -> int:
        """The call's number, unique in this process: how its run knows it."""
        return self.nonce[1]


_PROCESS_TAG = os.urandom(8)  # with the counter, a nonce no other call of any process has
_CALLS = itertools.count()


class RemoteOutcome:
    """What comes back: the step's value or error, and what it did to the run."""

    def __init__(
        self,
        value: Any,
        error: BaseException | None,
        ctx: RemoteContext | None,
        where: str,
    ) -> None:
        self.value = value
        self.error = error
        self.where = where
        self.stored: dict[str, Any] = {}
        self.deleted: tuple[str, ...] = ()
        self.effects: tuple[tuple[str, Event, str | None], ...] = ()
        self.journal: dict[str, Any] = {}
        if ctx is not None:
            self.journal = ctx._recorded
            if error is None:
                self.stored, self.deleted = ctx.store._changes()
                self.effects = tuple(ctx._effects)


def workflow_copy(workflow: Any) -> Any:
    """``workflow`` without what belongs to this process (its store, executor, resources)."""
    clone = object.__new__(type(workflow))
    clone.__dict__.update({k: v for k, v in workflow.__dict__.items() if k not in _LOCAL_ATTRS})
    return clone


def pack(
    call: RemoteCall,
    run_id: str,
    executor: Any,
    parts: list[tuple[str, Any]],
    shipment: Shipment,
) -> tuple[bytes, bytes, bytes]:
    """``call`` as ``shipment``'s ``(body, key, head)``, or a ``WorkflowRuntimeError`` naming
    what cannot travel: one of ``parts`` (what each argument is, and its value), or the
    step's function itself."""
    try:
        return shipment.pack(call)
    except Exception as whole:
        culprit, exc = "arguments", whole
        for what, value in [("function", call.fn), *parts]:
            try:
                dumps(value)
            except Exception as part_exc:
                culprit, exc = f"{what} {_short(value)}", part_exc
                if what == "workflow":
                    culprit = _workflow_culprit(value) or culprit
                break
        raise WorkflowRuntimeError(
            f"step {call.step!r} (run {run_id!r}) cannot be sent to {type(executor).__name__}: "
            f"its {culprit} cannot be pickled ({type(exc).__name__}: {exc}). A step that runs "
            f"in another process gets copies of its event, resources and workflow; keep this "
            f"step on a thread pool (@step(executor=ThreadPoolExecutor())) or make them "
            f"picklable"
        ) from None


def submit(executor: Any, body: bytes, key: bytes, head: bytes) -> Any:
    """Submit a packed call to ``executor``: a ``concurrent.futures.Future`` of its outcome.
    Dask's executor (``client.get_executor()``) is told the call is not pure: it would hash
    the call's bytes to name the task otherwise (see the module's notes)."""
    if _is_dask_executor(executor):
        return executor.submit(run_remote, body, key, head, pure=False)
    return executor.submit(run_remote, body, key, head)


def _is_dask_executor(executor: Any) -> bool:
    return any(
        cls.__name__ == "ClientExecutor" and cls.__module__.startswith("distributed.")
        for cls in type(executor).__mro__
    )


def build_event_classes() -> None:
    """Build every event class whose validator is still deferred (``Event`` defers it to
    first use). cloudpickle carries a class defined in a notebook by value, state and all,
    and sets that state again on the receiving side's copy with every call: a deferred
    validator set on a copy already built there recurses forever. Built here first, what
    travels is whole."""
    todo = list(Event.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not cls.__pydantic_complete__:
            cls.model_rebuild(raise_errors=False)


def _workflow_culprit(workflow: Any) -> str | None:
    for name, value in vars(workflow).items():
        try:
            dumps(value)
        except Exception:
            return f"workflow attribute {name!r} ({_short(value)})"
    return None


def where_am_i() -> str:
    """A Dask worker's address when running in one, else host and process id."""
    distributed = sys.modules.get("distributed")  # a Dask worker has it imported already
    if distributed is not None:
        try:
            return str(distributed.get_worker().address)
        except ValueError:  # not in a worker: a client, or a process pool next to one
            pass
    return f"{socket.gethostname()} pid {os.getpid()}"


def run_remote(body: bytes, key: bytes, head: bytes) -> bytes:
    """Run one packed call here (in the executor's process) and pack its outcome, naming
    what the head holds by its place there."""
    known, index = _head(key, head)
    call: RemoteCall = _loads(body, known)
    ctx = call.ctx
    try:
        value = call.fn(*call.args, **call.kwargs)
        error: BaseException | None = None
    except Exception as exc:
        value, error = None, exc
        _add_note(exc, "".join(traceback.format_exception(exc)).rstrip())
    outcome = RemoteOutcome(value, error, ctx, where_am_i())
    try:
        if error is not None:  # an error that pickles may still fail to load (its __init__)
            pickle.loads(dumps(error))
        return _Pickler.dumps(outcome, index)
    except Exception as exc:
        if error is None:
            problem: BaseException = WorkflowRuntimeError(
                f"step {call.step!r} returned {_short(value)}, which cannot travel back to "
                f"the run: it cannot be pickled ({type(exc).__name__}: {exc})"
            )
        else:
            problem = WorkflowRuntimeError(
                f"step {call.step!r} raised {type(error).__name__}: {error} (the error itself "
                f"cannot be pickled, so it is shown as text)\n"
                + "".join(traceback.format_exception(error))
            )
        return _Pickler.dumps(RemoteOutcome(None, problem, ctx, outcome.where), index)


def _add_note(error: BaseException, note: str) -> None:
    text = f"raised in another process; its traceback there:\n{note}"
    if hasattr(error, "add_note"):
        error.add_note(text)


def unpack(data: bytes, known: tuple[Any, ...]) -> RemoteOutcome:
    """The outcome ``run_remote`` packed, for a call packed with ``known`` as its head."""
    outcome: RemoteOutcome = _loads(data, known)
    return outcome
