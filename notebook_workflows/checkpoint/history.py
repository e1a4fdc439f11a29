"""A run's history as read back: the records a store keeps, each snapshot they make, and the
chain that rebuilds a snapshot from the nearest base and the deltas after it.

Design decisions:

* Records are rebuilt into contexts lazily and forward: a ``Snapshot`` only lists a record, its
  ``context`` folds deltas onto the nearest base (or a context computed recently) when it is
  first read, so listing a long history costs little and reading it in order applies each
  delta once.
* Parsing is strict (pydantic-core's parser, as ``serialization.parse_json``: faster than the
  standard library's on a megabyte base, refusing NaN and lone surrogates at once), and a
  record that does not parse is a damaged store (``SnapshotError``), never a crash.
* Nothing read is trusted: the records a store hands out must make a chain (``chain.check``,
  when they are listed: no gap, none swapped or changed), and each record must have the shape
  of a base or a delta (``schema``) before it is folded. Either failing is a ``SnapshotError``
  naming the store, the run and the snapshot, never a wrong state and never a ``TypeError``
  from the fold.
* Big store values stay text (``checkpoint.texts``): the chain keeps them as ``RawJSON``,
  ``resume`` restores them as they are (``Snapshot._raw_context``), and ``Snapshot.context``,
  what users read, holds them parsed into data: each value once per history, shared by the
  snapshots that share it (``_Chain.parsed``).
* The garbage collector waits while a base is parsed and deltas folded onto it: see
  ``codec._text``.
* Split from ``base.py`` (what a store is and does) so that each stays one concept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..codec import RawJSON, gc_paused, parse_raw
from ..errors import ContextSerdeError, SnapshotError
from .chain import parsed_link
from .delta import apply_delta, calls_of
from .edits import edits_of
from .listing import _when, plural
from .schema import check_base, check_delta
from .texts import parse_record

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .base import BaseStore

__all__ = ["Record", "Snapshot"]


class Record(NamedTuple):
    """One entry of a run's history, as a store keeps it (a tuple: one is made per step)."""

    run_id: str
    seq: int  # 0, 1, 2, ... within the run
    kind: str  # "base": a whole snapshot; "delta": the change since record seq - 1
    reason: str  # "start", "fork", "resume", "step", "replay", "journal", "status" or "end"
    step: str | None  # the step whose completion this records ("step" records only)
    status: str  # the run's status at that moment
    steps: int  # completed step invocations so far
    created_at: float  # seconds since the epoch
    data: str  # the base or delta, as JSON text


class Snapshot:
    """One snapshot of a run: the run as it was when snapshot number ``seq`` was written.

    ``context`` is what ``Context.from_dict`` takes. It is rebuilt from the store's records when
    read (the nearest base plus the deltas after it), so listing a long history costs little;
    reading a history in order rebuilds each snapshot from the one before. Treat it as
    read-only: the snapshots of one history share the parts that did not change.
    """

    __slots__ = (
        "_chain",
        "_context",
        "created_at",
        "kind",
        "reason",
        "run_id",
        "seq",
        "status",
        "step",
        "steps",
    )

    def __init__(self, record: Record, chain: _Chain) -> None:
        self.run_id: str = record.run_id
        self.seq: int = record.seq
        self.step: str | None = record.step
        self.created_at: float = record.created_at
        self.status: str = record.status
        self.steps: int = record.steps
        self.reason: str = record.reason
        self.kind: str = record.kind
        self._chain = chain
        self._context: dict[str, Any] | None = None

    @property
    def context(self) -> dict[str, Any]:
        """The whole run at this snapshot, as ``ctx.to_dict()`` gives it."""
        if self._context is None:
            context = self._chain.context(self.seq)
            store = context.get("store")
            if type(store) is dict and any(type(v) is RawJSON for v in store.values()):
                context = {**context, "store": self._parsed(store)}
            self._context = context
        return self._context

    def _raw_context(self) -> dict[str, Any]:
        """``context`` with its big store values still as the text the store keeps
        (``RawJSON``): what ``resume`` restores, parsing each value only when a step reads it
        (see ``checkpoint.texts``)."""
        return self._chain.context(self.seq)

    def _parsed(self, values: dict[str, Any]) -> dict[str, Any]:
        try:
            return {k: self._chain.parsed(v, k) for k, v in values.items()}
        except ContextSerdeError as exc:
            raise SnapshotError(
                f"{self._chain.store!r}: snapshot {self.seq} of run {self.run_id!r} cannot be "
                f"read: {exc}; the store is damaged"
            ) from None

    @property
    def calls(self) -> list[dict[str, Any]]:
        """The step calls that completed since the snapshot before this one, oldest first:
        each with its ``step``, ``replayed: True`` for a call a rerun replayed instead of
        calling (else its ``ran_because`` when a rerun could not replay it), and what it did
        (``emitted``, ``stream``, ``set``, ``deleted``). Empty for runs recorded before calls
        were."""
        record = self._chain.records[self._chain.index[self.seq]]
        if '"done"' not in record.data:
            return []
        try:
            calls = calls_of(self._chain._parse(record))
        except ValueError as exc:
            raise SnapshotError(
                f"{self._chain.store!r}: snapshot {self.seq} of run {self.run_id!r} cannot be "
                f"read: {exc}; the store is damaged"
            ) from None
        for call in calls:
            values = call.get("set")
            if type(values) is dict and any(type(v) is RawJSON for v in values.values()):
                call["set"] = self._parsed(values)
        return calls

    @property
    def workflow(self) -> str:
        return str(self._raw_context().get("workflow", ""))

    @property
    def edits(self) -> list[Mapping[str, Any]]:
        """The store edits a fork started with, on the fork's first snapshot (``[]`` on any
        other): ``{"key": ..., "value": ..., "was": ...}`` each, values as tagged JSON (see
        ``snapshot``; ``was`` is missing for a key that was new)."""
        return edits_of(self.context) if self.reason == "fork" else []

    def describe(self) -> str:
        """One line: what happened at this snapshot."""
        what = {
            "start": "run started",
            "fork": "forked",
            "resume": "resumed",
            "end": f"run ended ({self.status})",
            "status": f"now {self.status}",
            "replay": f"replayed steps, the last {self.step!r} (not called)",
        }.get(self.reason, f"after step {self.step!r}")
        edits = self.edits
        if edits:
            what += f" with the store edited ({', '.join(e['key'] for e in edits)})"
        steps = f"{self.steps} {plural(self.steps, 'step')} done"
        return f"#{self.seq} {what}, {steps}, {_when(self.created_at)}"

    def __repr__(self) -> str:
        return f"<Snapshot of run {self.run_id!r} {self.describe()}>"


class _Chain:
    """Consecutive records of one run, starting with a base, and the contexts they rebuild.

    Deltas are applied forward, iteratively, from the nearest base or from a context computed
    recently (a small cache), so reading a whole history in order applies each delta once and
    keeps only a few full states in memory, whatever the history's length."""

    CACHED = 4

    def __init__(self, store: BaseStore, records: Sequence[Record]) -> None:
        self.store = store
        self.records = list(records)
        self.index = {record.seq: i for i, record in enumerate(self.records)}
        self.cache: dict[int, dict[str, Any]] = {}
        # store values kept as text, parsed: the snapshots that share a value share its data
        self.values: dict[int, tuple[RawJSON, Any]] = {}

    def context(self, seq: int) -> dict[str, Any]:
        found = self.cache.get(seq)
        if found is not None:
            return found
        records = self.records
        end = self.index[seq]
        start = end
        while start > 0 and records[start].kind != "base" and records[start].seq not in self.cache:
            start -= 1
        first = records[start]
        if first.seq not in self.cache and first.kind != "base":
            raise SnapshotError(
                f"{self.store!r}: the kept records of run {first.run_id!r} do not start with a "
                f"base snapshot; the store is damaged"
            )
        with gc_paused():  # a big base is many new containers at once: see codec._text
            context = self.cache[first.seq] if first.seq in self.cache else self._base(first)
            for record in records[start + 1 : end + 1]:
                context = (
                    self._base(record)
                    if record.kind == "base"
                    else apply_delta(context, self._delta(record))
                )
        self.cache[seq] = context
        while len(self.cache) > self.CACHED:
            del self.cache[next(iter(self.cache))]
        return context

    def parsed(self, value: Any, key: str) -> Any:
        """``value`` as data: parsed once per chain if it is text (``RawJSON``)."""
        if type(value) is not RawJSON:
            return value
        found = self.values.get(id(value))
        if found is None:
            found = self.values[id(value)] = (value, parse_raw(value, key))
        return found[1]

    def _parse(self, record: Record) -> dict[str, Any]:
        """The data of ``record``, without its link to the record before (``chain``)."""
        try:
            data = parse_record(record.data, f"snapshot {record.seq} of run {record.run_id!r}")
        except ValueError as exc:
            raise SnapshotError(
                f"{self.store!r}: snapshot {record.seq} of run {record.run_id!r} is not valid "
                f"JSON ({exc}); the store is damaged"
            ) from None
        if not isinstance(data, dict):
            raise SnapshotError(
                f"{self.store!r}: snapshot {record.seq} of run {record.run_id!r} is not a JSON "
                f"object; the store is damaged"
            )
        try:
            parsed_link(record, data)
        except ValueError as exc:
            raise self._damaged(record, exc) from None
        return data

    def _base(self, record: Record) -> dict[str, Any]:
        """The state a base record holds, checked (``schema``)."""
        data = self._parse(record)
        try:
            check_base(data)
        except ValueError as exc:
            raise self._damaged(record, exc) from None
        return _state_of(data)  # without the calls a rerun replays: not part of the state

    def _delta(self, record: Record) -> dict[str, Any]:
        """The change a delta record holds, checked (``schema``) before it is applied."""
        if record.kind != "delta":
            raise self._damaged(record, f"its kind {record.kind!r} is unknown")
        data = self._parse(record)
        try:
            check_delta(data)
        except ValueError as exc:
            raise self._damaged(record, exc) from None
        return data

    def _damaged(self, record: Record, what: object) -> SnapshotError:
        return SnapshotError(
            f"{self.store!r}: snapshot {record.seq} of run {record.run_id!r} cannot be read: "
            f"{what}; the store is damaged"
        )


def _state_of(base: dict[str, Any]) -> dict[str, Any]:
    base.pop("done", None)
    base.pop("answers", None)
    return base
