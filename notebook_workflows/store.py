"""Store: a run's key/value state, as ``ctx.store`` holds it.

The store holds the objects it was given, as llama-index-workflows' store does: ``get`` hands
back the stored object itself, so changing it in place (``memory.put(msg)``,
``items.append(x)``) changes the store. ``set`` also encodes the value on the spot, so a value
that could not be saved is refused there, naming the key path and the type.

Snapshots hold the encoded values. A value handed out by ``get`` or ``set`` may have changed in
place since, so it is *touched*: when the step that touched it ends (and before any snapshot),
touched values are encoded again and those that differ are recorded as changed. A value no
step touched is never encoded again, so a checkpoint costs what the steps touched, not the
size of the store. Immutable values (numbers, strings, ``None``) are never touched.

A typed state (``Context[MyState]``) keeps its model's fields as keys and validates each value
set.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic_core import to_json

from ._frames import for_people
from .codec import RawJSON, decode_raw, parse_raw, value_digest
from .errors import ContextSerdeError, WorkflowRuntimeError
from .runtime.view import current_invocation_var
from .serialization import decode, encode

__all__ = ["DictState", "InMemoryStateStore", "StateStore", "Store", "ThreadStore"]

R = TypeVar("R")
StateT = TypeVar("StateT", bound=BaseModel)

_MISSING: Any = object()
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})
_SCALARS = frozenset({int, float, bool})  # kept as they are in a call's record of its reads
_held: contextvars.ContextVar[tuple[Store[Any], ...]] = contextvars.ContextVar(
    "notebook_workflows_held_stores", default=()
)


class Store(Generic[StateT]):
    """The run's key/value state; async-safe, serializable, copied on read.

    Keys may be dotted (``"cfg.retries"``) to reach into nested mappings and models. With a
    typed state (``Context[MyState]``) the keys are the model's fields and values are validated
    against it.
    """

    def __init__(self, state_type: type[StateT] | None = None) -> None:
        self._state_type = state_type
        self._data: dict[str, Any] = {}  # key -> encoded (tagged JSON) value
        self._changed: set[str] = set()  # keys set or deleted since the last checkpoint drain
        self._lock: asyncio.Lock | None = None
        self._thread_lock = threading.Lock()
        # key -> the object get() hands out (decoded once, or the one set); a snapshot's
        # values decoded while it was checked on load start here.
        self._live: dict[str, Any] = {}
        # live keys handed out since the last settle: they may have changed in place
        self._touched: set[str] = set()
        # key -> (encoded value, its digest): the last digest taken of each key (``_digest``)
        self._digests: dict[str, tuple[Any, str]] = {}
        # A typed state's model as the encoded values stand, kept so that setting one field
        # validates that field, not the whole model again (None: rebuilt on first use).
        self._model: StateT | None = None
        # While a checkpoint store records the run, each write is also noted on the step
        # invocation that made it (``Invocation.writes``), so a rerun can replay it.
        self._per_step = False
        if state_type is not None:
            self._reset_typed(state_type())

    # -- reading --------------------------------------------------------------------------------

    async def get(self, key: str, default: Any = _MISSING) -> Any:
        """The value at ``key`` (the stored object itself: changing it in place changes the
        store); ``default`` if missing, else ``KeyError``. Dotted keys reach into nested values:
        ``get("cfg.retries")``."""
        try:
            return self._get(key, default)
        except (KeyError, ContextSerdeError) as error:
            raise for_people(error) from error.__cause__

    def _get(self, key: str, default: Any = _MISSING) -> Any:
        head, _, rest = key.partition(".")
        if self._per_step:  # what the step read, for a rerun to check (see _note_read)
            inv = current_invocation_var.get()
            if inv is not None:
                reads = inv.reads
                if reads is None:
                    reads = inv.reads = {}
                if head not in reads:
                    reads[head] = self._data.get(head)
        try:
            encoded = self._data[head]
        except KeyError:
            if default is _MISSING:
                raise KeyError(self._missing_message(key, head)) from None
            return default
        live = self._live
        if live and head in live:
            value = live[head]
            self._touched.add(head)
        else:
            if type(encoded) is RawJSON:
                value = decode_raw(encoded, head)
            else:
                value = decode(encoded, path=head)
            if type(value) not in _IMMUTABLE:
                live[head] = value
                self._touched.add(head)
        if not rest:
            return value
        try:
            return _walk(value, rest.split("."), head)
        except KeyError:
            if default is _MISSING:
                raise
            return default

    def _missing_message(self, key: str, head: str) -> str:
        known = ", ".join(sorted(self._data)) or "none yet"
        return (
            f"the store has no key {head!r}"
            + (f" (looking up {key!r})" if key != head else "")
            + f"; keys: {known}"
        )

    def _read_digest(self, key: str) -> Any:
        """The digest of the value at ``key`` as a record keeps it (``""``: absent)."""
        self._settle()
        return self._digest(key, self._data.get(key))

    def _digest(self, key: str, encoded: Any) -> Any:
        """What a record keeps of a value a step read: a number, a bool or None as it is (no
        hashing), anything else as ``value_digest(encoded)``, remembered for the encoded value
        ``key`` holds, so a value read again and again without changing is digested once.
        ``""`` stands for a key that was absent."""
        if type(encoded) in _SCALARS:
            return encoded
        cached = self._digests.get(key)
        if cached is not None and cached[0] is encoded:
            return cached[1]
        digest = value_digest(encoded)
        self._digests[key] = (encoded, digest)
        return digest

    def _copy_of(self, key: str) -> Any:
        """A fresh copy of the value at top-level ``key`` (``edit_state`` edits a copy, so a
        block that raises changes nothing)."""
        if key in self._live:
            self._settle()
        if key not in self._data:
            raise KeyError(self._missing_message(key, key))
        encoded = self._data[key]
        return decode_raw(encoded, key) if type(encoded) is RawJSON else decode(encoded, path=key)

    def keys(self) -> list[str]:
        """The top-level keys (field names for a typed state)."""
        return list(self._data)

    def to_dict(self) -> dict[str, Any]:
        """A copy of every value, decoded (for display and tests; snapshots use the encoded)."""
        self._settle()
        with self._thread_lock:
            data = dict(self._data)
        return {
            k: decode_raw(v, k) if type(v) is RawJSON else decode(v, path=k)
            for k, v in data.items()
        }

    @property
    def state(self) -> StateT | dict[str, Any]:
        """A copy of the whole state: the model for a typed state, else a dict."""
        values = self.to_dict()
        if self._state_type is not None:
            return self._state_type.model_validate(values)
        return values

    # -- writing --------------------------------------------------------------------------------

    async def set(self, key: str, value: Any) -> None:
        """Save ``value`` at ``key``; refused at once if it cannot be serialized."""
        lock = self._lock
        try:
            if lock is None or not lock.locked() or self in _held.get():
                self._set(key, value)  # no await in between: atomic on the loop
                return
            async with self._guard():
                self._set(key, value)
        except (KeyError, ContextSerdeError) as error:  # the refusal names the key: enough
            raise for_people(error) from error.__cause__

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a ``KeyError`` if it is missing)."""
        lock = self._lock
        if lock is None or not lock.locked() or self in _held.get():
            self._delete(key)
            return
        async with self._guard():
            self._delete(key)

    async def get_state(self) -> Any:
        """A copy of the whole state: the model for a typed state (``Context[MyState]``),
        else a dict of every key."""
        return self.state

    async def set_state(self, state: Any) -> None:
        """Replace the whole state: a model of the typed state's class (or a subclass), or
        a mapping of keys for an untyped store. Refused whole if any value could not be
        saved, naming the key."""
        async with self._guard():
            self._replace_state(state)

    def _replace_state(self, state: Any) -> None:
        if self._state_type is not None:
            if not isinstance(state, self._state_type):
                raise TypeError(
                    f"set_state takes a {self._state_type.__name__}, got {type(state).__name__}"
                )
            self._commit_typed(state)
            return
        if not isinstance(state, dict):
            raise TypeError(f"set_state takes a dict of keys, got {type(state).__name__}")
        encoded = {str(k): encode(v, path=str(k)) for k, v in state.items()}
        if self._per_step:
            for key in self._data.keys() - encoded.keys():
                _note_write(key, None)
            for key, value in encoded.items():
                _note_write(key, value)
        with self._thread_lock:
            self._changed.update(self._data.keys() | encoded.keys())
            self._data = encoded
            self._forget_live()

    async def clear(self) -> None:
        """Empty the store (a typed state goes back to its defaults)."""
        await self.set_state(self._empty_state())

    def _empty_state(self) -> Any:
        return self._state_type() if self._state_type is not None else {}

    @contextlib.asynccontextmanager
    async def edit_state(self) -> AsyncIterator[Any]:
        """Atomic read-modify-write of several keys::

            async with ctx.store.edit_state() as state:
                state["count"] += 1          # or state.count with a typed state

        Other writers wait until the block ends; if the block raises, nothing is changed.
        """
        async with self._guard():
            if self._state_type is not None:
                model = self.state
                yield model
                self._commit_typed(model)
            else:
                view = _StateView(self)
                yield view
                view._commit()

    def _set(self, key: str, value: Any) -> None:
        head, _, rest = key.partition(".")
        if not head:
            raise KeyError(f"invalid store key {key!r}")
        if rest:
            container = self._get(head) if head in self._data else {}
            _assign(container, rest.split("."), value, head)
            value, key = container, head
        if self._state_type is not None:
            self._set_typed_field(key, value)
            return
        encoded = encode(value, path=key)
        with self._thread_lock:
            self._data[key] = encoded
            self._changed.add(key)
            if type(value) not in _IMMUTABLE:
                self._live[key] = value
                self._touched.add(key)
            elif key in self._live:  # an immutable value needs no live object
                del self._live[key]
                self._touched.discard(key)
        if self._per_step:
            _note_write(key, encoded)

    def _delete(self, key: str) -> None:
        head, _, rest = key.partition(".")
        if head not in self._data:
            raise KeyError(self._missing_message(key, head))
        if rest:
            container = self._get(head)
            parts = rest.split(".")
            parent = _walk(container, parts[:-1], head) if len(parts) > 1 else container
            try:
                del parent[parts[-1]]
            except (KeyError, TypeError):
                raise KeyError(f"the store has no key {key!r}") from None
            self._set(head, container)
            return
        if self._state_type is not None:
            raise KeyError(
                f"cannot delete {key!r}: it is a field of the typed state "
                f"{self._state_type.__name__}; set it to a default value instead"
            )
        with self._thread_lock:
            del self._data[key]
            self._changed.add(key)
            self._live.pop(key, None)
            self._touched.discard(key)
        if self._per_step:
            _note_write(key, None)

    # -- typed state ----------------------------------------------------------------------------

    def _reset_typed(self, model: Any) -> None:
        self._data = {
            name: encode(getattr(model, name), path=name) for name in type(model).model_fields
        }
        self._changed.update(self._data)
        self._forget_live()
        self._model = None

    def _set_typed_field(self, name: str, value: Any) -> None:
        state_type = self._state_type
        assert state_type is not None
        if name not in state_type.model_fields:
            raise KeyError(
                f"{state_type.__name__} has no field {name!r}; "
                f"fields: {', '.join(state_type.model_fields)}"
            )
        model = self._model
        if model is None:
            model = state_type.model_validate(self.to_dict())  # what self.state reads
        # Validate the one field on a shallow copy: a refused value leaves the model as it was.
        changed = model.model_copy()
        state_type.__pydantic_validator__.validate_assignment(changed, name, value)
        value = getattr(changed, name)
        encoded = encode(value, path=name)
        with self._thread_lock:
            self._data[name] = encoded
            self._changed.add(name)
            self._keep_live(name, value)
            self._model = changed
        if self._per_step:
            _note_write(name, encoded)

    def _commit_typed(self, model: Any) -> None:
        assert self._state_type is not None
        if not isinstance(model, self._state_type):
            raise TypeError(f"edit_state must leave a {self._state_type.__name__} in place")
        checked = self._state_type.model_validate(model.model_dump())
        encoded = {
            name: encode(getattr(checked, name), path=name)
            for name in self._state_type.model_fields
        }
        with self._thread_lock:
            for name, value in encoded.items():
                if self._data.get(name) != value:
                    self._changed.add(name)
                    if self._per_step:
                        _note_write(name, value)
            self._data = encoded
            self._forget_live()
            self._model = None

    # -- locking --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Hold the store's lock, unless the calling code already holds it: a ``set`` inside
        its own ``edit_state`` block must not deadlock. Who holds it travels in a context
        variable, so it follows the code through eager steps, tasks and threads alike."""
        held = _held.get()
        if self in held:
            yield
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            token = _held.set((*held, self))
            try:
                yield
            finally:
                _held.reset(token)

    def _reset_lock(self) -> None:
        """A new run may run on another event loop: give it a fresh lock."""
        self._lock = None

    # -- snapshots ------------------------------------------------------------------------------

    def _encoded(self, raw: bool = False) -> dict[str, Any]:
        """Every key's encoded value; one held as the text it was loaded from (``RawJSON``) is
        parsed now and kept so, unless ``raw`` (for a record) or its text does not parse."""
        self._settle()
        with self._thread_lock:
            data = dict(self._data)
        if raw:
            return data
        for key, value in data.items():
            if type(value) is RawJSON:
                try:
                    data[key] = parse_raw(value, key, check=True)
                except ContextSerdeError:
                    continue
                with self._thread_lock:
                    if self._data.get(key) is value:
                        self._data[key] = data[key]
        return data

    def _load(self, encoded: dict[str, Any], decoded: dict[str, Any] | None = None) -> None:
        with self._thread_lock:
            self._data = dict(encoded)
            self._changed = set(encoded)
            self._live = dict(decoded or {})
            self._touched = set()
            self._model = None

    def _apply_encoded(self, writes: dict[str, Any]) -> None:
        """Set encoded values (None: delete the key) as a replayed step had set them."""
        stored = {key: value for key, value in writes.items() if value is not None}
        self._merge(stored, [key for key, value in writes.items() if value is None])

    def _merge(self, stored: dict[str, Any], deleted: Sequence[str] = ()) -> None:
        """Take writes made elsewhere (a step that ran in another process, on a copy of this
        store): ``stored`` tagged JSON values by key, already checked there, and ``deleted``
        keys. Each key written replaces the one here: the last writer of a key wins."""
        with self._thread_lock:
            for key in deleted:
                self._data.pop(key, None)
            self._data.update(stored)
            for key in (*deleted, *stored):
                self._live.pop(key, None)
                self._touched.discard(key)
            self._changed.update(stored)
            self._changed.update(deleted)
            self._model = None

    def _drain_changes(self, deleted: Any) -> dict[str, Any]:
        """Keys changed since the last call, with their encoded value (``deleted`` if gone)."""
        self._settle()
        with self._thread_lock:
            changed = {k: self._data.get(k, deleted) for k in self._changed}
            self._changed = set()
        return changed

    # -- values changed in place ----------------------------------------------------------------

    def _keep_live(self, key: str, value: Any) -> None:
        """``value`` was just set at ``key``: it is the live object (the caller may still
        change it in place), unless it is immutable."""
        if type(value) in _IMMUTABLE:
            self._live.pop(key, None)
            self._touched.discard(key)
        else:
            self._live[key] = value
            self._touched.add(key)

    def _forget_live(self) -> None:
        self._live = {}
        self._touched = set()

    def _settle(self, inv: Any = None) -> list[str]:
        """Encode again every touched value; record those that changed in place (noted on
        ``inv``, the step that ends, for a rerun) and return their keys. A value changed into
        something that cannot be saved raises ``ContextSerdeError`` naming the key; it stays
        touched, so the refusal repeats until the value is fixed."""
        if not self._touched:
            return []
        with self._thread_lock:
            touched, self._touched = self._touched, set()
            live = {key: self._live[key] for key in touched if key in self._live}
        changed = []
        for key, value in live.items():
            try:
                encoded = encode(value, path=key)
            except ContextSerdeError:
                self._touched.update(live)
                raise
            with self._thread_lock:
                if self._live.get(key) is not value or _same(self._data.get(key), encoded):
                    continue
                self._data[key] = encoded
                self._changed.add(key)
                self._model = None
            changed.append(key)
            if self._per_step and inv is not None:
                if inv.writes is None:
                    inv.writes = {}
                inv.writes[key] = encoded
        return changed

    def __repr__(self) -> str:
        keys = ", ".join(self._data)
        return f"<Store {keys or '(empty)'}>"


class StoreReads:
    """The plain reads of a store a sync step's ``ctx.store`` wraps (``_store``)."""

    _store: Store[Any]

    def keys(self) -> list[str]:
        return self._store.keys()

    def to_dict(self) -> dict[str, Any]:
        return self._store.to_dict()

    @property
    def state(self) -> Any:
        """A copy of the whole state: the model for a typed state, else a dict."""
        return self._store.state


class ThreadStore(StoreReads):
    """``ctx.store`` as a sync step on the run's thread pool sees it: the run's own store, with
    plain calls. A ``def`` step cannot ``await``, so ``get``, ``set``, ``delete``,
    ``get_state``, ``set_state`` and ``clear`` return their result here, as they do for a step
    on a process pool or a Dask cluster (``remote.RemoteStore``): the same step runs on any
    executor. Each call is carried out on the run's event loop, in turn with every other change
    of the store (an ``edit_state`` block in an async step included), and waits for it.
    """

    __slots__ = ("_loop", "_store")

    def __init__(self, store: Store[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop

    def _on_loop(self, call: Coroutine[Any, Any, R]) -> R:
        if self._loop.is_closed():  # the run ended while this step still ran
            call.close()
            raise WorkflowRuntimeError(
                "the run this step belonged to has ended, and its event loop with it: "
                "ctx.store takes no more calls from the step"
            )
        try:
            return asyncio.run_coroutine_threadsafe(call, self._loop).result()
        except (KeyError, TypeError, ContextSerdeError) as error:
            raise for_people(error) from error.__cause__

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The value at ``key`` (the stored object itself: changing it in place changes the
        store); ``default`` if missing, else ``KeyError``. Dotted keys reach into nested values:
        ``get("cfg.retries")``."""
        return self._on_loop(self._store.get(key, default))

    def set(self, key: str, value: Any) -> None:
        """Save ``value`` at ``key``; refused at once if it cannot be serialized."""
        self._on_loop(self._store.set(key, value))

    def delete(self, key: str) -> None:
        """Remove ``key`` (a ``KeyError`` if it is missing)."""
        self._on_loop(self._store.delete(key))

    def get_state(self) -> Any:
        """A copy of the whole state: the model for a typed state, else a dict."""
        return self._on_loop(self._store.get_state())

    def set_state(self, state: Any) -> None:
        """Replace the whole state (a model of the typed state's class, or a dict of keys)."""
        self._on_loop(self._store.set_state(state))

    def clear(self) -> None:
        """Empty the store (a typed state goes back to its defaults)."""
        self._on_loop(self._store.clear())

    def edit_state(self) -> Any:
        raise WorkflowRuntimeError(
            "ctx.store.edit_state() is an async block (async with): use it in an async step; "
            "a sync step sets keys one call at a time"
        )

    def __getattr__(self, name: str) -> Any:
        # the library's own reads of the store (ctx.to_dict() in a sync step, say)
        if name.startswith("_"):
            return getattr(self._store, name)
        raise AttributeError(f"ctx.store has no {name!r}")

    def __repr__(self) -> str:
        return f"<ThreadStore of {self._store!r}>"


def _same(stored: Any, encoded: Any) -> bool:
    """Whether ``encoded`` is what the store holds; a value still kept as the text it was
    loaded from is compared as text (the text is that value's ``to_json``)."""
    if type(stored) is RawJSON:
        return to_json(encoded) == stored.text.encode()
    return stored == encoded


def _note_write(key: str, encoded: Any) -> None:
    """Note on the calling step's invocation that it set ``key`` (None: deleted it)."""
    inv = current_invocation_var.get()
    if inv is not None:
        if inv.writes is None:
            inv.writes = {}
        inv.writes[key] = encoded


class _StateView:
    """The mutable view ``edit_state`` yields for an untyped store.

    Values are decoded when first touched; on a clean exit every touched key is saved again,
    so ``state["items"].append(x)`` inside the block sticks.
    """

    def __init__(self, store: Store[Any]) -> None:
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_touched", {})
        object.__setattr__(self, "_deleted", set())

    def __getitem__(self, key: str) -> Any:
        touched = self._touched
        if key not in touched:
            if key in self._deleted:
                raise KeyError(key)
            touched[key] = self._store._copy_of(key)
        return touched[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._touched[key] = value
        self._deleted.discard(key)

    def __delitem__(self, key: str) -> None:
        if key not in self._touched and key not in self._store._data:
            raise KeyError(key)
        self._touched.pop(key, None)
        self._deleted.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._touched or (key in self._store._data and key not in self._deleted)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def keys(self) -> list[str]:
        names = {**dict.fromkeys(self._store._data), **self._touched}
        return [k for k in names if k not in self._deleted]

    def _commit(self) -> None:
        encoded = {k: encode(v, path=k) for k, v in self._touched.items()}
        store = self._store
        with store._thread_lock:
            for key in self._deleted:
                if key in store._data:
                    del store._data[key]
                    store._changed.add(key)
            store._data.update(encoded)
            store._changed.update(encoded)
            for key in (*self._deleted, *encoded):
                store._live.pop(key, None)
                store._touched.discard(key)
        if store._per_step:
            for key in self._deleted:
                _note_write(key, None)
            for key, value in encoded.items():
                _note_write(key, value)


def _walk(value: Any, parts: Sequence[str], head: str) -> Any:
    path = head
    for part in parts:
        path = f"{path}.{part}"
        if isinstance(value, dict):
            if part not in value:
                raise KeyError(f"the store has no key {path!r}")
            value = value[part]
        elif isinstance(value, BaseModel) or hasattr(value, "__dataclass_fields__"):
            if not hasattr(value, part):
                raise KeyError(f"the store has no key {path!r}")
            value = getattr(value, part)
        else:
            raise KeyError(
                f"cannot look up {path!r}: {path.rsplit('.', 1)[0]!r} holds a "
                f"{type(value).__name__}, not a mapping"
            )
    return value


def _assign(container: Any, parts: Sequence[str], value: Any, head: str) -> None:
    target = container
    path = head
    for part in parts[:-1]:
        path = f"{path}.{part}"
        if isinstance(target, dict):
            target = target.setdefault(part, {})
        elif isinstance(target, BaseModel) or hasattr(target, "__dataclass_fields__"):
            target = getattr(target, part)
        else:
            raise KeyError(f"cannot set {path!r}: it is inside a {type(target).__name__}")
    last = parts[-1]
    if isinstance(target, dict):
        target[last] = value
    elif isinstance(target, BaseModel) or hasattr(target, "__dataclass_fields__"):
        setattr(target, last, value)
    else:
        raise KeyError(f"cannot set {path}.{last}: {path!r} holds a {type(target).__name__}")


def encode_once(step: str, key: str, result: Any) -> Any:
    """``ctx.once(key, ...)``'s ``result`` as its journal records it (tagged JSON, checked as
    the store checks a value), or ``WorkflowRuntimeError`` naming the step and the key when it
    cannot be recorded."""
    try:
        return encode(result, path=f"once[{key!r}]")
    except Exception as exc:
        raise WorkflowRuntimeError(
            f"step {step!r}: ctx.once({key!r}, ...) returned a value that cannot be "
            f"recorded ({exc}); return something the store could save, such as an id"
        ) from exc


class DictState(BaseModel):
    """An untyped state as llama-index-workflows models it: any keys, read as items or
    attributes (``state["k"]``, ``state.k``, ``state.get("k")``)."""

    model_config = ConfigDict(extra="allow")

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in (self.model_extra or {})

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class InMemoryStateStore(Store[StateT]):
    """A store that lives outside any run (LlamaIndex's ``SimpleAgentContext`` keeps one):
    the same ``Store``, started from ``initial_state``, a ``DictState`` (untyped) or a model of
    your own (typed)."""

    def __init__(self, initial_state: StateT | None = None) -> None:
        if initial_state is None or isinstance(initial_state, DictState):
            super().__init__(None)
            if initial_state is not None:
                self._replace_state(dict(initial_state.model_extra or {}))
        else:
            super().__init__(type(initial_state))
            self._replace_state(initial_state)


StateStore = Store  # the peer's name for the store's interface
