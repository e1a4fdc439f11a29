"""Rerun and cache: replaying recorded step calls from a checkpoint store's history.

Every record a checkpoint store keeps after a step lists the calls that completed since the
record before (``done``, see ``snapshot``): each call's step, code hash and input digest, the
events it emitted and streamed, and the store keys it set or deleted. From those this module
builds the ``runtime.replay.ReplayTable`` the reducer consults:

* ``Workflow.rerun(run_id)``: after editing steps, run the recorded run again as a new run (a
  fork of its first snapshot, so the original stays as it was). Every call whose step code and
  input event are unchanged is replayed (not called: its store writes, emitted and streamed
  events are applied); the edited steps, and every step that now receives different events,
  run for real. The new run's history says, per step, ``replay`` or ``step`` (it ran).
* ``Workflow.run(..., cache=store)``: a new run that replays, for steps marked
  ``@step(cache=True)``, any call recorded by an earlier run of this workflow in ``store`` with
  the same step code and input (or ``cache_key``); it records into that store too.

A step that asked a human or waited for an event is replayed like any other: it is not called,
so it does not ask again, and what it did with the answer it got is applied. A ``ctx.once``
result is part of what the step did, so it is not called again either. What cannot be replayed
safely runs, and its record says why (``ran_because``): a step marked ``@step(replay=False)``,
a step that calls ``ctx.collect_events``, a step whose input could not be keyed. Runs recorded
before calls were recorded have no ``done`` lists: everything in a rerun of them runs.

Reading a recorded call only parses JSON and finds event classes by name
(``serialization.find_class``): it never imports a module or calls what the data names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..codec import RawJSON
from ..errors import ContextSerdeError, SnapshotError
from ..events import Event
from ..runtime.replay import Effects, ReplayTable
from ..serialization import decode, decode_event, qualified_name
from ..snapshot import step_codes
from .base import SnapshotStore
from .delta import calls_of

if TYPE_CHECKING:
    from ..handler import WorkflowHandler
    from ..workflow import Workflow

__all__ = ["cache_table", "recorded_answers", "recorded_calls", "rerun_run"]


def rerun_run(
    workflow: Workflow, run_id: str, *, store: Any = None, durability: str = "sync"
) -> WorkflowHandler:
    """``workflow.rerun(run_id, store=...)``: see the module docstring."""
    from .resume import _store_for, resume_run

    store = _store_for(workflow, store)
    history = store.history(run_id)  # an unknown run is refused here, naming the store
    table = ReplayTable(_codes(workflow))
    for entry in recorded_calls(store, run_id):
        _add(table, entry, run_id)
    for question, answer in recorded_answers(store, run_id):
        table.add_answer(question, answer)
    return resume_run(
        workflow, run_id, store=store, at=history[0].seq, durability=durability, replay=table
    )


def cache_table(workflow: Workflow, store: SnapshotStore) -> ReplayTable:
    """The calls of ``@step(cache=True)`` steps that earlier runs of ``workflow`` recorded in
    ``store``, for ``run(cache=store)``."""
    if not isinstance(store, SnapshotStore):
        raise TypeError(
            f"cache must be a snapshot store (SQLiteStore(), MemoryStore(), ...), "
            f"got {type(store).__name__}"
        )
    specs = type(workflow)._step_specs()
    table = ReplayTable(_codes(workflow), cache_only=True)
    cached = {name for name, spec in specs.items() if spec.cache}
    if not cached:
        return table
    name = qualified_name(type(workflow))
    for info in store.runs():
        if info.workflow != name:
            continue
        for entry in recorded_calls(store, info.run_id):
            if entry.get("step") in cached:
                _add(table, entry, info.run_id)
    return table


def recorded_calls(store: SnapshotStore, run_id: str) -> list[dict[str, Any]]:
    """Every call the kept records of run ``run_id`` list (``done``), oldest first."""
    return _recorded(store, run_id, "done")


def recorded_answers(store: SnapshotStore, run_id: str) -> list[tuple[str, Event]]:
    """The answers sent from outside to run ``run_id``'s questions, oldest first, each with
    the digest of the question it answered."""
    out = []
    for i, entry in enumerate(_recorded(store, run_id, "answers")):
        question = entry.get("question")
        if type(question) is not str:
            raise SnapshotError(
                f"{store!r}: recorded answer {i} of run {run_id!r} names no question; the "
                f"store is damaged"
            )
        try:
            answer = decode_event(entry.get("answer"), f"answers[{i}]")
        except ContextSerdeError as exc:
            raise SnapshotError(f"recorded answer {i} of run {run_id!r}: {exc}") from exc
        out.append((question, answer))
    return out


def _recorded(store: SnapshotStore, run_id: str, part: str) -> list[dict[str, Any]]:
    history = store.history(run_id)
    chain = getattr(history[0], "_chain", None) if history else None
    if chain is None:
        return []
    found: list[dict[str, Any]] = []
    marker = f'"{part}"'
    for record in chain.records:
        if marker not in record.data:  # most records of other kinds: no parse needed
            continue
        data = chain._parse(record)
        try:
            if part == "done":
                found.extend(calls_of(data))
                continue
            items = data.get(part) or []
            if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
                raise ValueError(f"its {part!r} is not a list of mappings")
        except ValueError as exc:
            raise SnapshotError(
                f"{store!r}: snapshot {record.seq} of run {run_id!r} cannot be read: {exc}; "
                f"the store is damaged"
            ) from None
        found.extend(dict(item) for item in items)
    return found


_READ_TYPES = (str, int, float, bool)  # a digest, or a number or bool kept as it is


def _codes(workflow: Workflow) -> dict[str, str]:
    return step_codes(type(workflow)._step_specs(), workflow)


def _add(table: ReplayTable, entry: Mapping[str, Any], run_id: str) -> None:
    """Put one recorded call into ``table``: its effects, or why it cannot be replayed."""
    step, code, key = entry.get("step"), entry.get("code"), entry.get("input")
    if type(step) is not str or step not in table.codes:
        return  # a step that is gone
    where = f"a recorded call of step {step!r} in run {run_id!r}"
    if not isinstance(code, str) or not (key is None or isinstance(key, str)):
        raise SnapshotError(f"{where} has no code hash or input digest; the store is damaged")
    journal = entry.get("journal") or None
    if journal is not None:
        if not isinstance(journal, Mapping) or not all(type(k) is str for k in journal):
            raise SnapshotError(f"{where} has a journal that is not a mapping of names")
        for name, value in journal.items():
            try:
                decode(value, path=f"journal.{name}")  # checked now, decoded on use
            except ContextSerdeError as exc:
                raise SnapshotError(f"{where} cannot be read: {exc}") from exc
        journal = dict(journal)
    unsafe = entry.get("unsafe")
    if unsafe:
        table.add(step, code, key, str(unsafe), journal)
        return
    try:
        events = []
        for i, item in enumerate(entry.get("emitted") or ()):
            target = item.get("to")
            if target is not None and type(target) is not str:
                raise ContextSerdeError(f"emitted[{i}].to is not a step name")
            events.append((decode_event(item.get("event"), f"emitted[{i}].event"), target))
        stream = tuple(
            decode_event(item, f"stream[{i}]") for i, item in enumerate(entry.get("stream") or ())
        )
        writes: dict[str, Any] = {}
        for key_, value in (entry.get("set") or {}).items():
            if type(value) is not RawJSON:  # (text: checked by the get that reads it)
                decode(value, path=f"set.{key_}")  # checked now: a replay writes it as it is
            writes[str(key_)] = value
        for key_ in entry.get("deleted") or ():
            writes[str(key_)] = None
        reads = entry.get("reads") or None
        if reads is not None and not (
            isinstance(reads, Mapping)
            and all(type(k) is str and type(v) in _READ_TYPES for k, v in reads.items())
        ):
            raise ContextSerdeError("its 'reads' is not a mapping of keys to digests or numbers")
    except (ContextSerdeError, AttributeError, TypeError) as exc:
        raise SnapshotError(f"{where} cannot be read: {exc}") from exc
    effects = Effects(tuple(events), stream, writes or None, run_id, dict(reads) if reads else None)
    table.add(step, code, key, effects, journal)
