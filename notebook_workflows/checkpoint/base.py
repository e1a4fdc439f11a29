"""What every checkpoint store is: the protocol, the records it keeps, and the shared reading.

A run's history is a sequence of *records*, numbered 0, 1, 2, ... within the run. A record is
either a *base* (a whole snapshot, ``ctx.to_dict()``) or a *delta* (what changed since the
record before it, ``snapshot.delta_of``). The recorder writes a base when a run starts or is
resumed, one delta per completed step, a delta when the run ends, and a fresh base whenever the
deltas since the last base add up to more than that base (or at least ``MIN_BASE_GAP``). So
the cost of a checkpoint follows what the step changed, and loading any snapshot replays a
bounded number of deltas onto the nearest base before it.

Design decisions:

* A store only keeps records and answers for them. Everything that gives them meaning (folding
  deltas onto bases, rebuilding history, pruning, the error messages) lives once, here, in
  ``BaseStore``; SQLite, Redis and memory differ only in a handful of primitive methods. A store
  of one's own implements the ``SnapshotStore`` protocol, most easily by subclassing
  ``BaseStore``.
* Records hold JSON text, never pickles: loading a snapshot parses JSON (pydantic-core's strict
  parser, as ``serialization.parse_json``: faster than the standard library's on a megabyte
  base, and refusing NaN and lone surrogates at once), and classes named in it are found by
  ``serialization.find_class``, which never imports or calls what the data names.
* Each record carries its status and step count besides the JSON, so ``runs()`` and ``history``
  can be listed without parsing a single snapshot; ``Snapshot.context`` is rebuilt on first use.
* A store's records are checked when read, not trusted: ``latest``, ``snapshot`` and
  ``history`` refuse records that do not make a chain (``chain``: a gap, a swap, a changed
  record) or a record of the wrong shape (``schema``), with a ``SnapshotError`` naming the
  store, the run and the snapshot.
* Every failure of a backend (a full disk, a Redis server that went away, a locked file) comes
  out as ``SnapshotError`` naming the store and the run; a run whose checkpoint cannot be written
  fails with it, and the records already written stay loadable. A backend may word the cause
  for people (``_explain``): "did not answer within 2 s", "the file is damaged".
* Every store is a context manager: ``with SQLiteStore(path) as store: ...`` closes it at the
  end (``store.close()`` does the same; closing twice is harmless). A closed store refuses
  every call with a ``SnapshotError`` saying it is closed, instead of quietly reopening.
* Run ownership (leases) is a handful of methods (``lease.Leasing``, mixed into ``BaseStore``)
  on top of two primitives each backend implements, ``_lease`` (read) and ``_swap_lease`` (an
  atomic read-decide-write); the rules of who may take a lease live once, in ``lease.py``.
* This is the durable layer: it imports nothing from the notebook face (``notebook/``,
  ``widgets``, ``graph``). Its few text helpers (``plural``, ``printable``) are its own.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, runtime_checkable

from ..errors import SnapshotError
from .chain import check as check_chain
from .chain import damaged, link_of, unlinked
from .history import Record, Snapshot, _Chain
from .lease import Lease, LeaseStore, Leasing, Owner, RunOwnedError
from .listing import RunInfo, RunList
from .texts import dumps

__all__ = [
    "MIN_BASE_GAP",
    "BaseStore",
    "Lease",
    "LeaseStore",
    "Owner",
    "PruneResult",
    "Record",
    "RunInfo",
    "RunList",
    "RunOwnedError",
    "Snapshot",
    "SnapshotStore",
    "StepCodeChangedWarning",
]

# Deltas worth less than this since the last base never trigger a new base: for a small state a
# base every few steps would cost more than it saves, and replaying 64 KiB of deltas is quick.
MIN_BASE_GAP = 64 * 1024

STATUSES = ("running", "waiting", "done", "failed", "cancelled")


class StepCodeChangedWarning(UserWarning):
    """A run is resumed with steps whose code differs from when it was checkpointed."""


@dataclass(frozen=True)
class PruneResult:
    """What ``store.prune(...)`` removed."""

    runs_deleted: list[str] = field(default_factory=list)
    snapshots_dropped: int = 0


@runtime_checkable
class SnapshotStore(Protocol):
    """Where checkpoints go. ``run(checkpoint=store)`` writes to one, ``resume`` reads from one.

    ``save`` is the only writing method a run needs: it must store the record atomically (all
    of it or nothing), and refuse a ``(run_id, seq)`` that exists or, with ``new_run``, a run id
    that exists (another kernel writing the same run). A store may also have
    ``save_many(records)`` (every ``BaseStore`` has): consecutive records of one run that
    exists, stored all or none under the same refusals, in one commit; ``durability="async"``
    uses it when it is there, and ``save`` record by record when not.
    """

    def save(self, record: Record, *, new_run: RunInfo | None = None) -> None: ...

    def run_info(self, run_id: str) -> RunInfo | None: ...

    def runs(self) -> RunList: ...

    def history(self, run_id: str) -> list[Snapshot]: ...

    def latest(self, run_id: str) -> Snapshot: ...

    def snapshot(self, run_id: str, seq: int) -> Snapshot: ...

    def delete(self, run_id: str) -> None: ...

    def prune(
        self,
        *,
        keep_runs: int | None = None,
        older_than: float | None = None,
        compact: bool = False,
    ) -> PruneResult: ...


class RunExistsError(Exception):
    """Raised by a backend's ``_append`` when ``new_run`` names a run it already has."""


class SeqTakenError(Exception):
    """Raised by a backend's ``_append`` (``_append_many``) when a record's ``(run_id, seq)``
    exists; its argument is that seq, or None when the backend cannot tell which."""


class BaseStore(Leasing, ABC):
    """Everything a store does, on top of a few primitives its backend implements.

    A store is a context manager: ``with SQLiteStore(path) as store:`` closes it at the end
    of the block, as ``store.close()`` does. Closing twice is harmless; any other use of a
    closed store raises ``SnapshotError``.
    """

    _closed = False

    # -- what a backend implements --------------------------------------------------------------

    @abstractmethod
    def _append(self, record: Record, new_run: RunInfo | None) -> None:
        """Store ``record`` (and the run's row, with ``new_run``) in one atomic write; raise
        ``RunExistsError`` or ``SeqTakenError`` instead of overwriting anything."""

    def _append_many(self, records: Sequence[Record]) -> None:
        """Store consecutive records of one existing run in one atomic write (all or none);
        raise ``SeqTakenError`` if any of their seqs exists. The stores here override it;
        this fallback writes them one by one, in order, stopping at the first failure, so
        what it leaves is still a whole prefix of the run's history."""
        for record in records:
            self._append(record, None)

    @abstractmethod
    def _runs(self) -> list[RunInfo]:
        """Every run, each with the status, steps, time and seq of its latest record."""

    @abstractmethod
    def _run(self, run_id: str) -> RunInfo | None: ...

    @abstractmethod
    def _records(self, run_id: str, first: int, last: int) -> list[Record]:
        """The records ``first <= seq <= last`` of the run, oldest first."""

    @abstractmethod
    def _base_before(self, run_id: str, seq: int) -> int | None:
        """The seq of the newest base at or before ``seq``."""

    @abstractmethod
    def _delete(self, run_id: str) -> bool:
        """Remove the run and its records; False if there was none."""

    @abstractmethod
    def _rebase(self, record: Record) -> int:
        """Replace the record at ``record.seq`` by ``record`` (a base holding the same state)
        and drop every older record of the run; returns how many records were dropped."""

    def _close(self) -> None:
        """Let go of connections and files (called once, by ``close``)."""

    def _lease(self, run_id: str) -> Lease | None:
        """The lease kept for the run, expired or not, or None."""
        raise SnapshotError(f"{self!r} keeps no run leases (it does not implement _lease)")

    def _swap_lease(
        self, run_id: str, change: Callable[[Lease | None], Lease | object | None]
    ) -> Lease | None:
        """Atomically: read the run's lease, call ``change`` with it (None if there is none),
        and store what it returns (a ``Lease``; None removes the lease; ``KEEP`` writes
        nothing). Returns the lease kept afterwards. Exceptions from ``change`` abort, with
        nothing written."""
        raise SnapshotError(f"{self!r} keeps no run leases (it does not implement _swap_lease)")

    def _explain(self, exc: BaseException) -> str | None:
        """The backend's failure ``exc`` in words for people, or None for the plain text."""
        return None

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store's connections. Closing twice is harmless; using the store after
        raises ``SnapshotError``."""
        if self._closed:
            return
        self._closed = True
        self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> BaseStore:
        self._ensure_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_open(self) -> None:
        if self._closed:
            raise SnapshotError(
                f"{self!r} is closed (store.close() or the end of its `with` block): "
                f"make a new store for the same path, URL or DSN to use it again"
            )

    # -- writing --------------------------------------------------------------------------------

    def save(self, record: Record, *, new_run: RunInfo | None = None) -> None:
        """Store one record atomically; ``new_run`` creates the run with its first record."""
        self._ensure_open()
        try:
            self._append(record, new_run)
        except Exception as exc:
            error = self._not_saved(exc, record.run_id, record.seq, record.seq)
            if error is exc:
                raise
            raise error from error.__cause__

    def save_many(self, records: Sequence[Record]) -> None:
        """Store consecutive records of one run that exists in one atomic write: all of them
        or none (one transaction, script or statement, so a batch of steps costs one commit).
        Refuses, writing nothing, a seq that exists or a run that was deleted."""
        if not records:
            return
        first = records[0]
        for i, record in enumerate(records):
            if record.run_id != first.run_id or record.seq != first.seq + i:
                raise ValueError(
                    f"save_many takes consecutive records of one run: record {i} is snapshot "
                    f"{record.seq} of run {record.run_id!r}, after snapshot {first.seq} of run "
                    f"{first.run_id!r}"
                )
        self._ensure_open()
        try:
            self._append_many(records)
        except Exception as exc:
            error = self._not_saved(exc, first.run_id, first.seq, records[-1].seq)
            if error is exc:
                raise
            raise error from error.__cause__

    def _not_saved(self, exc: Exception, run_id: str, first: int, last: int) -> SnapshotError:
        """The error a backend's refusal or failure to save snapshots ``first`` to ``last``
        comes out as (a ``SnapshotError`` as it is); the backend's own exception is its cause
        unless it was a refusal."""
        if isinstance(exc, SnapshotError):
            return exc
        which = f"snapshot {first}" if first == last else f"snapshots {first} to {last}"
        if isinstance(exc, RunExistsError):
            return SnapshotError(
                f"{self!r} already has a run {run_id!r}: continue it with "
                f"workflow.resume({run_id!r}), delete it with store.delete({run_id!r}), or "
                f"start this run with another run_id"
            )
        if isinstance(exc, SeqTakenError):
            taken = exc.args[0] if exc.args else None
            which = f"snapshot {taken}" if isinstance(taken, int) else f"one of {which}"
            return SnapshotError(
                f"{self!r} already has {which} of run {run_id!r}: "
                + self._who_else(run_id)
                + "A run can be continued by one of them at a time"
            )
        error = SnapshotError(
            f"{self!r} could not save {which} of run {run_id!r}: {self._cause(exc)}"
        )
        error.__cause__ = exc
        return error

    def _gone(self, records: Sequence[Record]) -> SnapshotError:
        """What a backend raises when the run of ``records`` was deleted meanwhile."""
        first, last = records[0].seq, records[-1].seq
        which = f"snapshot {first} was" if first == last else f"snapshots {first} to {last} were"
        return SnapshotError(
            f"{self!r} no longer has run {records[0].run_id!r} (it was deleted while the run "
            f"went on); {which} not saved"
        )

    def _who_else(self, run_id: str) -> str:
        """Who else writes the run, as far as its lease tells (for an error message)."""
        lease = None
        with contextlib.suppress(SnapshotError):
            lease = self.lease_of(run_id)
        if lease is None:
            return "is the run going on in another kernel or process? "
        return (
            f"the run is owned by {lease.owner.describe()} (lease token {lease.owner.token}), "
            f"which wrote it meanwhile. "
        )

    # -- reading --------------------------------------------------------------------------------

    def run_info(self, run_id: str) -> RunInfo | None:
        """The run's ``RunInfo``, or None if the store has no such run."""
        with self._failing(f"look up run {run_id!r}"):
            return self._run(run_id)

    def runs(self) -> RunList:
        """Every run in the store, the most recently updated first."""
        with self._failing("list its runs"):
            found = self._runs()
        return RunList(sorted(found, key=lambda info: (-info.updated_at, info.run_id)))

    def latest(self, run_id: str) -> Snapshot:
        """The run's latest snapshot (what ``resume(run_id)`` continues from)."""
        info = self._require(run_id)
        return self._load_one(info, info.seq)

    def snapshot(self, run_id: str, seq: int) -> Snapshot:
        """Snapshot number ``seq`` of the run (what ``resume(run_id, at=seq)`` forks from);
        a negative ``seq`` counts from the latest, as in a list."""
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise TypeError(f"a snapshot number is an int, got {type(seq).__name__}")
        info = self._require(run_id)
        return self._load_one(info, seq + info.seq + 1 if seq < 0 else seq)

    def _load_one(self, info: RunInfo, seq: int) -> Snapshot:
        run_id = info.run_id
        if not 0 <= seq <= info.seq:
            raise SnapshotError(self._no_snapshot(info, seq))
        with self._failing(f"load snapshot {seq} of run {run_id!r}"):
            base = self._base_before(run_id, seq)
            records = self._records(run_id, base, seq) if base is not None else []
        if base is None:
            raise self._no_base(info, seq)
        snapshots = self._fold(run_id, records, base, seq)
        if base and link_of(records[0].data) is None:
            self._unlinked_base(run_id, records[0])
        return snapshots[-1]

    def history(self, run_id: str) -> list[Snapshot]:
        """Every snapshot of the run still kept, oldest first. Each one's ``context`` is
        rebuilt (base plus the deltas up to it) when it is read."""
        info = self._require(run_id)
        with self._failing(f"load the history of run {run_id!r}"):
            records = self._records(run_id, 0, info.seq)
        # after a compacting prune the history starts at the base it left, which names no
        # record before it; a first record that does names one that is missing
        first = records[0].seq if records else 0
        if first and link_of(records[0].data) is not None:
            what = (
                f"snapshot {first - 1} of run {run_id!r} is missing (the records start at {first})"
            )
            raise damaged(self, run_id, what, -1)
        return self._fold(run_id, records, first, info.seq)

    def _fold(
        self, run_id: str, records: Sequence[Record], first: int, last: int
    ) -> list[Snapshot]:
        """The snapshots of ``records``, which must be snapshots ``first`` to ``last`` of the
        run, each the one the next names (``chain``), the first of them a base."""
        check_chain(self, run_id, records, first, last)
        if records[0].kind != "base":
            if first:  # not what a compacting prune leaves: its first record is a base
                what = (
                    f"snapshot {first - 1} of run {run_id!r} is missing (its records start at "
                    f"{first}, which is not a base snapshot)"
                )
            else:
                what = f"snapshot 0 of run {run_id!r} is not a base snapshot"
            raise damaged(self, run_id, what, -1)
        chain = _Chain(self, records)
        return [Snapshot(record, chain) for record in records]

    def _unlinked_base(self, run_id: str, base: Record) -> None:
        """Refuse ``base``, a base after the run's first record that names no record before
        it, if the record before it names one (``chain.unlinked``)."""
        with self._failing(f"load snapshot {base.seq - 1} of run {run_id!r}"):
            before = self._records(run_id, base.seq - 1, base.seq - 1)
        if before and link_of(before[0].data) is not None:
            unlinked(self, before[0], base)

    def _no_base(self, info: RunInfo, seq: int) -> SnapshotError:
        """The error for snapshot ``seq``, which has no base at or before it: pruned (a
        compacting prune drops every record before the base it leaves), or damaged."""
        with self._failing(f"load snapshot {seq} of run {info.run_id!r}"):
            kept = self._records(info.run_id, 0, seq)
        if not kept:
            return SnapshotError(self._no_snapshot(info, seq))
        try:
            self._fold(info.run_id, kept, 0, seq)  # names what is missing or out of place
        except SnapshotError as error:
            return error
        return damaged(  # no base at all (the store's list of bases is wrong)
            self, info.run_id, f"snapshot 0 of run {info.run_id!r} is not a base snapshot", -1
        )

    # -- removing -------------------------------------------------------------------------------

    def delete(self, run_id: str) -> None:
        """Remove the run and all its snapshots (its forks keep their own)."""
        with self._failing(f"delete run {run_id!r}"):
            found = self._delete(run_id)
        if not found:
            raise SnapshotError(self._unknown(run_id))

    def prune(
        self,
        *,
        keep_runs: int | None = None,
        older_than: float | None = None,
        compact: bool = False,
    ) -> PruneResult:
        """Bound what old runs keep.

        ``keep_runs=n`` deletes every run but the ``n`` most recently updated;
        ``older_than=seconds`` deletes the runs not updated for that long; ``compact=True``
        keeps of each remaining run only its latest snapshot (rewritten as a base), dropping
        its history. The latest snapshot of every run kept stays loadable.
        """
        if keep_runs is not None and keep_runs < 0:
            raise ValueError(f"keep_runs must be 0 or more, got {keep_runs}")
        runs = self.runs()
        doomed: list[str] = []
        if keep_runs is not None:
            doomed.extend(info.run_id for info in runs[keep_runs:])
        if older_than is not None:
            cutoff = time.time() - older_than
            doomed.extend(info.run_id for info in runs if info.updated_at < cutoff)
        deleted = list(dict.fromkeys(doomed))
        for run_id in deleted:
            with self._failing(f"delete run {run_id!r}"):
                self._delete(run_id)
        dropped = 0
        if compact:
            for info in runs:
                if info.run_id in deleted:
                    continue
                latest = self.snapshot(info.run_id, info.seq)
                record = Record(
                    info.run_id,
                    latest.seq,
                    "base",
                    latest.reason,
                    latest.step,
                    latest.status,
                    latest.steps,
                    latest.created_at,
                    dumps(latest._raw_context()),  # big store values: their text as it is
                )
                with self._failing(f"compact run {info.run_id!r}"):
                    dropped += self._rebase(record)
        if deleted or dropped:
            with self._failing("give the pruned space back"):
                self._after_prune()
        return PruneResult(deleted, dropped)

    def _after_prune(self) -> None:
        """Give freed space back, where the backend needs telling (SQLite does)."""

    # -- errors ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _failing(self, action: str) -> Iterator[None]:
        """Report any failure of the backend as a ``SnapshotError`` naming the store."""
        self._ensure_open()
        try:
            yield
        except SnapshotError:
            raise
        except Exception as exc:
            raise SnapshotError(f"{self!r} could not {action}: {self._cause(exc)}") from exc

    def _cause(self, exc: BaseException) -> str:
        return self._explain(exc) or f"{type(exc).__name__}: {exc}"

    def _require(self, run_id: str) -> RunInfo:
        if not isinstance(run_id, str):
            raise TypeError(f"a run id is a str, got {type(run_id).__name__}")
        info = self.run_info(run_id)
        if info is None:
            raise SnapshotError(self._unknown(run_id))
        return info

    def _unknown(self, run_id: str) -> str:
        known = [info.run_id for info in self.runs()]
        if not known:
            return f"{self!r} has no run {run_id!r}: it holds no runs at all"
        shown = ", ".join(repr(r) for r in known[:5])
        more = f" and {len(known) - 5} more" if len(known) > 5 else ""
        return f"{self!r} has no run {run_id!r}; recent runs: {shown}{more}"

    def _no_snapshot(self, info: RunInfo, seq: int) -> str:
        return (
            f"run {info.run_id!r} in {self!r} has no snapshot {seq}: its snapshots are "
            f"numbered 0 to {info.seq}" + (" (older ones were pruned)" if seq <= info.seq else "")
        )
