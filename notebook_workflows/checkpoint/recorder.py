"""Recorder: turns a run's checkpoint hooks into records in a ``SnapshotStore``.

``run(checkpoint=store, durability=...)`` wraps the store in a ``Recorder``; the driver calls
its hooks on the event loop:

* ``run_started`` takes a base (the whole snapshot) and returns the call, made off the loop
  before any step starts, that takes the run's lease and writes it: number 0 for a new run
  or a fork, the next number for a run that continues (``resume``), so a resumed run appends
  to its own history;
* ``step_completed``, called right after a step's output events were routed, writes one delta:
  what that step changed (store keys, queue entries, in-flight invocations, collect buffers),
  taken from the change tracking of ``RunState`` and the store, never by diffing whole states;
* ``journal_written`` writes a delta when a step recorded a ``ctx.once`` result, before the
  step goes on;
* ``status_changed`` writes a small delta when the run starts or stops waiting for a human;
* ``run_ended`` writes a last delta with the final status (done, failed or cancelled).

When those records reach the store is the run's ``durability``. In every mode the records are
built on the event loop, in order, and written by the run's writer thread (``writer.py``): no
store call is made on the loop: the run's lease and first record are taken off it too, before
any step starts (a second run of the same run id in this process is refused at once, on the
loop, without asking the store). The loop goes on while a record is written and waits for it where a
mode says so; a store that does not answer (a locked file, a stopped server) delays the run,
never the notebook.

* ``"sync"`` (the default): every step has its own record. A step's record is taken on the
  loop right after its output was routed, atomically with it (no other step can start or
  finish in between), and the run goes on while the thread writes it; before the next record
  is handed over, the one before it must be in the store (the run waits for it there). So at
  any moment at most the records of the last two steps are not written yet: a crash loses at
  most those two, which ``resume`` runs again. (Writing each record before the next step
  starts would make every step wait for a round trip to the thread: measured, 35 to 200 us
  a step on this shared 2-core machine, more than the commit itself.)
* ``"async"``: steps that complete in quick succession share one record. A completed step's
  changes stay in the change tracking; once the run has gone ``writer.LINGER`` (2 ms) without
  another step completing (it waits for a model, a network: the case that matters in a
  notebook), one delta covering every step since the last record is taken and handed to the
  thread. A run whose steps keep coming quicker than that takes a record every
  ``BUSY_BATCH`` (16) steps and goes on while the thread writes it, once the record before it
  is written. A crash can lose the steps not yet written, fewer than ``2 * BUSY_BATCH`` (32)
  at any moment, which ``resume`` runs again. The history has one snapshot per record, so
  ``resume(at=n)`` forks from the end of such a group; ``rerun`` replays every call, each
  being listed in its record.
* ``"exit"``: nothing is written per step. The start base, ``ctx.once`` records, pauses and
  the end are written, each as one delta that covers every change since the record before it
  (the change tracking keeps accumulating until it is drained), so the history stays a chain
  that ``latest``, ``history`` and ``resume`` read as usual. A run of any length writes a
  handful of records; a crash goes back to the last of them.

In every mode, ``ctx.once`` records, pauses for a human and the end are promises: the step
(or the run) goes on only once the record and every record before it are in the store. A
``ctx.once`` call is made only once every record before it is written, so a record that may
still fail never lets a call happen that a resume would make again.

A write that fails stops the run before anything queued after it is carried out (no other
step starts), with the error a ``SnapshotError`` naming the store, the run, the checkpoint and
the resume line; nothing more is written for the run (a delta after a lost one would not
replay), so the store keeps a whole prefix of the history. A failure found only by the last
hook, ``run_ended``, fails a run that would otherwise be done.

Design decisions:

* Bases are rewritten when the deltas since the last base add up to more than the base itself
  (and at least ``MIN_BASE_GAP``): a 1 MB state with one key changed per step writes about
  1 MB of deltas between two bases, so a checkpoint's cost follows the change, loading replays
  a bounded amount, and the database grows with the changes, not with copies of the state.
  The choice, and each record's number, is made on the loop in every mode, so the order of
  bases and deltas is the order of the changes.
* At-least-once: a step whose checkpoint was not written when the process died is still in
  flight in the latest snapshot, and runs again on resume. Steps with outside effects should
  be idempotent, or put the effect in ``ctx.once``.
* One run, one owner: a store that keeps leases (every store here does) gives the run to the
  process that starts or resumes it. A second ``resume`` of a run that is going on elsewhere
  fails with ``RunOwnedError`` naming the owner before any of its steps runs (in the same
  process, at the call itself); a dead owner never blocks (on the same host at once, from
  another host once its lease expires, or with ``force=True``). The lease is taken, renewed
  and released off the event loop: released when the run ends, after the writer thread has
  written everything and stopped (in the background after the store failed the run).
* A ``ctx.once`` result whose record a failing store lost (the call was made, the store did
  not take its record) is kept in this process (``runtime.unrecorded``) and given back to
  the same step and input when the run is resumed here: under store faults without a crash,
  no call is made twice.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._ports import DURABILITY  # when a run's records reach the store: see above
from ..errors import ContextSerdeError, SnapshotError
from ..runtime.state import Changes
from ..runtime.unrecorded import forget_unrecorded
from ..serialization import find_class, qualified_name
from ..snapshot import snapshot_of, step_codes
from .base import MIN_BASE_GAP, BaseStore, LeaseStore, Record, RunInfo, SnapshotStore, dumps
from .chain import digest, link
from .delta import DELETED, calls_done, delta_baseline, delta_of
from .lease import LeaseKeeper, Owner, RunOwnedError
from .writer import LINGER, MAX_WAITING, Writer

# "async": a busy run takes a record every this many steps and goes on while the thread writes
# it (waiting for the record before): with the steps not in a record yet, fewer than twice as
# many steps are ever unwritten. (8 kept the bound at 16 but cost a hand-over to the thread
# every 8 quick steps: 1.2x to 2x the bare commit against 1.0x to 1.4x with 16, measured in
# bench/bench_durability.py.)
BUSY_BATCH = MAX_WAITING

# The run ids this process drives now, with a lease, and the recorder of each: a second resume of
# one of them in the same process is refused like one from another process, unless the event
# loop that drove it is gone (a run whose loop closed before it could end never gives it back).
_DRIVEN: dict[str, Recorder] = {}

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["DURABILITY", "Recorder"]

# A rerun's replayed calls are written this many at a time (or with the next record of any
# other kind): a replay is cheap to do again, a record per replay would cost what it saves.
REPLAY_BATCH = 256

_record = functools.partial(tuple.__new__, Record)  # Record(*fields), from a tuple of them

# What a hook gives the driver: a future done once its record is in the store (failed with
# the run's error if it was lost), which the run awaits before it goes on; None: nothing to wait
Written = concurrent.futures.Future[None] | None


class Recorder:
    """The checkpoint hooks of one run, writing to ``store``.

    ``continuing=True`` (a run that goes on from a snapshot) appends to the run's history if
    the store has it; ``parent=(run_id, seq)`` marks a fork, and ``edits`` (the ``"edits"``
    record of ``edits.apply_store_edits``) goes into the fork's first snapshot.
    ``min_base_gap`` is the least amount of delta text (characters) between two bases.
    ``durability`` is ``"sync"``, ``"async"`` or ``"exit"`` (see the module docstring).
    """

    def __init__(
        self,
        store: SnapshotStore,
        *,
        continuing: bool = False,
        parent: tuple[str, int] | None = None,
        min_base_gap: int = MIN_BASE_GAP,
        force: bool = False,
        durability: str = "sync",
        edits: list[dict[str, Any]] | None = None,
    ) -> None:
        if durability not in DURABILITY:
            raise ValueError(
                f"durability must be one of {', '.join(map(repr, DURABILITY))}, not {durability!r}"
            )
        if not isinstance(store, SnapshotStore):
            raise TypeError(
                f"checkpoint must be a snapshot store (SQLiteStore(), RedisStore(...), "
                f"MemoryStore()) or an object with the checkpoint hooks, got "
                f"{type(store).__name__}"
            )
        self.store = store
        self.continuing = continuing
        self.parent = parent
        self.edits = edits  # the store edits a fork starts with, for its first snapshot
        self.min_base_gap = min_base_gap
        self.run_id = ""
        self.workflow_name = ""
        self.opened = False  # the run is owned and its first record written (``_open``)
        self.claimed = False  # this recorder holds the run in this process (``_claim``)
        self.seq = -1  # number of the last record written (in "async": handed to the writer)
        self.last_digest: str | None = None  # of that record, for the next one's link (chain)
        self.gap = min_base_gap  # delta text allowed before the next base
        self.since_base = 0  # delta text written since the last base
        self.failed: BaseException | None = None  # the write error that stopped the run
        self.since: dict[str, Any] = {}  # the small parts as last written (see delta_of)
        self.force = force  # take the run over even if another process owns it
        self.durability = durability  # "sync" | "async" | "exit": see the module docstring
        self.keeper: LeaseKeeper | None = None
        self.writer: Writer | None = None  # the background writer of "async"
        self.on_lost: Callable[[BaseException], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.codes: dict[str, str] = {}  # step -> code hash, for the calls a rerun replays
        self.replays = 0  # replayed calls not written yet (see ``step_replayed``)
        # "async": steps completed since the last record, when the last did, which it was
        self.pending = 0
        self.last_at = 0.0
        self.last_step: str | None = None
        self.timer: asyncio.TimerHandle | None = None  # the check that the run went idle
        self.recorded_steps = 0  # ``steps_done`` as of the last record built
        # records handed to the writer's thread and not known written: (seq, steps they cover)
        self.unwritten: collections.deque[tuple[int, int]] = collections.deque()
        self.unwritten_steps = 0
        self.encoded: dict[int, Any] = {}  # queued events' encodings (``delta_of``)

    def __repr__(self) -> str:
        return f"Recorder({self.store!r}, run {self.run_id or '(not started)'!r})"

    # -- the hooks ------------------------------------------------------------------------------

    def run_started(self, ctx: Context[Any]) -> Callable[[], None]:
        """Take the run's first snapshot (on the loop, before anything runs) and return what
        is left to do off it: a call that takes the run's lease and writes the first record,
        raising ``RunOwnedError`` (naming the owner) or the store's error. The driver starts
        no step before it has returned."""
        _check_event_classes(ctx)
        state = ctx._state
        self.run_id = state.run_id or ""
        self.codes = step_codes(ctx._specs, ctx.workflow)
        ctx.store._per_step = True  # each step's store writes are recorded with its call
        self._claim()
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        try:
            first = self._first_base(ctx)
        except BaseException:
            self._disown()
            raise
        # every record after the first is written by the writer's thread, off the loop
        self.writer = Writer(
            self.store,
            self.run_id,
            failed=self._lost_checkpoint,
            report=self._writer_failed,
            lingers=self.durability == "async",
        ).start()
        return functools.partial(self._open, first)

    def _open(self, first: tuple[str, str, int]) -> None:
        """Off the loop: own the run, then write its first record (see ``run_started``)."""
        try:
            self._own()  # raises RunOwnedError, naming the owner, if another process runs it
            self._first_record(*first)
        except BaseException:
            self._close()
            raise
        writer = self.writer
        assert writer is not None, "run_started made it"
        writer.written = self.seq
        self.opened = True

    def watch(self, on_lost: Callable[[BaseException], None]) -> None:
        """Call ``on_lost(error)`` on the run's loop if the run's lease is lost (another
        process took the run over, or the store stopped answering until it expired), or if
        the writer thread of ``"async"`` could not save a record."""
        self.on_lost = on_lost

    def _claim(self) -> None:
        """On the loop, before anything else: a run this process drives already is refused
        at once (the store's lease, taken off the loop, settles it between processes)."""
        if not isinstance(self.store, LeaseStore):
            return
        driving = _DRIVEN.get(self.run_id)
        if driving is not None and driving._driving() and not self.force:
            raise RunOwnedError(
                f"run {self.run_id!r} in {self.store!r} is owned by "
                f"{Owner.current().describe()} (this process), which is running it now: a run "
                f"is continued by one process at a time. Wait for it to finish, or cancel it"
            )
        _DRIVEN[self.run_id] = self
        self.claimed = True

    def _driving(self) -> bool:
        """Whether this recorder's run still goes on: it holds its claim and the event loop
        that drives it is open (or not known yet: the claim is made on it, just before)."""
        loop = self._loop
        return self.claimed and (loop is None or not loop.is_closed())

    def _own(self) -> None:
        if not isinstance(self.store, LeaseStore):
            return
        owner = Owner.current()
        try:
            self.store.acquire_lease(self.run_id, owner, force=self.force)
        except RunOwnedError as exc:
            # A lease this very process kept for a run it no longer drives (its release was
            # lost with the store that failed the run) blocks nobody here: the run it drives
            # now was claimed by this recorder alone (``_claim``).
            held = exc.lease
            if held is None or held.owner.pid != os.getpid() or held.owner.host != owner.host:
                raise
            self.store.acquire_lease(self.run_id, owner, force=True)
        self.keeper = LeaseKeeper(self.store, self.run_id, owner, on_lost=self._lost).start()

    def _lost(self, error: BaseException) -> None:
        if self.on_lost is not None:
            self.on_lost(error)

    def _writer_failed(self, error: BaseException) -> None:
        """The writer thread could not save a record: fail the run, on its loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._lost, error)
                return
        self._lost(error)

    def _disown(self) -> None:
        keeper, self.keeper = self.keeper, None
        if self.claimed:
            self.claimed = False
            if _DRIVEN.get(self.run_id) is self:
                del _DRIVEN[self.run_id]
        if keeper is not None:
            if self.lost() is None:
                keeper.stop(release=True)
                return
            # the store failed the run: the lease is given back without waiting for a store
            # that may not answer (this process may resume the run at once meanwhile)
            threading.Thread(
                target=keeper.stop, name=f"lease-release {self.run_id}", daemon=True
            ).start()

    def _first_base(self, ctx: Context[Any]) -> tuple[str, str, int]:
        """On the loop: the run's whole snapshot as the text of its first record, with the
        run's status and steps; change tracking starts here."""
        state = ctx._state
        state.drain_changes()  # tracking starts here: the base below holds everything
        ctx.store._drain_changes(DELETED)
        snapshot = snapshot_of(ctx, raw=True)
        if self.parent is not None and self.edits:
            snapshot["edits"] = self.edits
        data = dumps(snapshot)
        self.since = delta_baseline(ctx)
        self.gap = max(len(data), self.min_base_gap)
        self.since_base = 0
        self.workflow_name = qualified_name(type(ctx.workflow))
        return data, state.status, state.steps_done

    def _first_record(self, data: str, status: str, steps: int) -> None:
        """Off the loop: write the run's first record, numbered after the store's history of
        the run when it continues one (``resume``), else number 0 with a new ``RunInfo``."""
        known = self.store.run_info(self.run_id) if self.continuing else None
        new_run = None
        if known is not None:
            self.seq = known.seq
            self.last_digest = self._digest_of_latest(known.seq)
            reason = "resume"
        else:
            now = time.time()
            parent, parent_seq = self.parent if self.parent is not None else (None, None)
            reason = "fork" if parent else "start"
            new_run = RunInfo(
                run_id=self.run_id,
                workflow=self.workflow_name,
                status=status,
                steps=steps,
                updated_at=now,
                parent=parent,
                parent_seq=parent_seq,
                created_at=now,
            )
        record = self._numbered("base", reason, None, status, steps, data)
        self.store.save(record, new_run=new_run)  # its error is the run's, as it is
        self.seq = record.seq
        self.recorded_steps = steps

    def _digest_of_latest(self, seq: int) -> str | None:
        """The digest of record ``seq`` of this run in the store, which the record that goes on
        from it names (``chain``); None for a store that does not give its records out."""
        if not isinstance(self.store, BaseStore):
            return None
        found = self.store._records(self.run_id, seq, seq)
        return digest(found[-1].kind, found[-1].data) if found else None

    def step_completed(self, ctx: Context[Any], step: str | None) -> Written:
        # "exit" leaves the changes tracked: the next record written covers them
        if self.durability == "exit" or not self._writing():
            return None
        if self.durability == "sync":
            # a run stepped by hand shows each step's record in the store when step() returns
            return self._delta(ctx, "step", step, follow=not ctx._state.stepwise)
        # "async": the changes wait for more steps to share their record (see above)
        self.pending += 1
        self.last_step = step
        if self.pending >= BUSY_BATCH:  # a busy run: written while the next steps run
            return self._delta(ctx, "step", step, follow=True)
        if self.pending + self._unwritten() >= MAX_WAITING:
            return self._delta(ctx, "step", step)  # the thread fell behind: the run waits
        self.last_at = time.monotonic()
        if self.timer is None and self._loop is not None:
            self.timer = self._loop.call_later(LINGER, self._idle, ctx)
        return None

    def _idle(self, ctx: Context[Any]) -> None:
        """On the loop, ``LINGER`` after a step completed: if no other step completed since
        (the run waits for something), the steps not recorded yet get their record, which the
        writer's thread writes; else check again ``LINGER`` after the latest."""
        self.timer = None
        writer = self.writer
        if not self.pending or writer is None or writer.error is not None or self.failed:
            return
        left = self.last_at + LINGER - time.monotonic()
        if left > 0:
            # (_idle is only armed with a loop: see step_completed)
            self.timer = self._loop.call_later(left, self._idle, ctx)  # type: ignore[union-attr]
            return
        try:
            self._delta(ctx, "step", self.last_step, soon=True)
        except Exception as exc:  # (a timer has no caller to raise to) the run fails
            self.failed = self.failed or exc
            self._lost(exc)

    def _unwritten(self) -> int:
        """Steps whose record the writer's thread has not written yet."""
        queue = self.unwritten
        if queue:
            # (records are queued only while the writer is there)
            written = self.writer.written  # type: ignore[union-attr]
            while queue and queue[0][0] <= written:
                self.unwritten_steps -= queue.popleft()[1]
        return self.unwritten_steps

    def step_replayed(self, ctx: Context[Any], step: str | None) -> Written:
        """A rerun replayed a step (``Workflow.rerun``). Replayed calls are written
        ``REPLAY_BATCH`` at a time, with the reason ``"replay"``, or with the next record of
        any other kind, whichever comes first; each record's ``done`` list says which calls
        were replayed and which ran. A crash loses at most a batch of replays, which a resumed
        run does again for real (it has no replay table): rerun the original again instead."""
        if self.durability != "exit" and self._writing():
            self.replays += 1
            if self.replays >= REPLAY_BATCH:
                return self._delta(ctx, "replay", step, follow=self.durability == "sync")
        return None

    def journal_written(self, ctx: Context[Any], step: str | None) -> Written:
        """A step recorded a ``ctx.once`` result: in the store before the step goes on, in
        every mode (the result is a promise that the call is never made again). Raises the
        store's error if the run can no longer write (a record before it was lost)."""
        if not self._writing():
            raise self.failed or SnapshotError(f"run {self.run_id!r} has no checkpoint yet")
        return self._delta(ctx, "journal", step)

    def ready(self) -> Written:
        """Done once every record numbered so far is in the store (what ``ctx.once`` waits
        for before it makes its call: a charge is never made while a checkpoint before it
        may still fail). Raises the store's error if one was lost already."""
        if not self._writing():
            raise self.failed or SnapshotError(f"run {self.run_id!r} has no checkpoint yet")
        writer = self.writer
        return writer.wait_for(self.seq) if writer is not None else None

    def status_changed(self, ctx: Context[Any]) -> Written:
        """The run started or stopped waiting for an event from outside (a human's answer):
        a small record, in the store before the run goes on, so ``runs()`` shows a paused run
        as ``waiting`` and a kernel restarted during the pause can resume it."""
        if self._writing():
            return self._delta(ctx, "status", None)
        return None

    def run_ended(self, ctx: Context[Any]) -> Callable[[], None]:
        """Take the run's last record (on the loop) and return what is left to do off it:
        a call that blocks until every record is written, the writer's thread stopped and
        the lease given back, raising the store's error if the last record was lost."""
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        end: Written = None
        lost = self.lost()
        if lost is None and self.keeper is not None and self.keeper.lost is not None:
            lost = self.keeper.lost  # the run is another owner's now: no end record from here
        try:
            if lost is None and self.opened:  # else the last good one stays latest
                end = self._delta(ctx, "end", None)
        except BaseException:
            self._close()
            raise
        return functools.partial(self._close, end, lost)

    def _close(self, end: Written = None, lost: BaseException | None = None) -> None:
        """Off the loop: wait for the end record (if any), stop the writer, give the lease
        back; raise the error that lost the end record, or an earlier one (a run that would
        be done is not: the driver fails it)."""
        try:
            self._stop_writer()
        finally:
            self._disown()
        if lost is not None:
            raise lost
        if end is not None:
            end.result()  # raises the store's error if the end record was lost
            forget_unrecorded(self.run_id)  # every ctx.once result is in the store now

    def lost(self) -> BaseException | None:
        """The error that stopped this run's records, if one did (a step must not start)."""
        writer = self.writer
        return self.failed or (writer.error if writer is not None else None)

    def _writing(self) -> bool:
        """Whether records are still written: the run has its first record and no write
        failed (a delta after a lost one would not replay). The first hook to learn that the
        writer's thread failed raises its error, which stops the run at once (the thread's
        own report reaches the loop only between two of its turns)."""
        writer = self.writer
        if writer is not None and writer.error is not None and self.failed is None:
            self.failed = writer.error
            raise writer.error
        return self.failed is None and self.opened

    def _stop_writer(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()  # writes what waits, then joins the thread
            if writer.error is not None and self.failed is None:
                self.failed = writer.error

    # -- writing --------------------------------------------------------------------------------

    def _delta(
        self,
        ctx: Context[Any],
        reason: str,
        step: str | None,
        soon: bool = False,
        follow: bool = False,
    ) -> Written:
        """Have the changes since the last record written (``soon`` and ``follow``: see
        ``_save``)."""
        self.replays = self.pending = 0  # whatever record is written covers them
        state = ctx._state
        changes = state.drain_changes()
        encoded = self.encoded
        delta = delta_of(ctx, changes, ctx.store._drain_changes(DELETED), self.since, encoded)
        data = dumps(delta)
        # what the calls did is for a rerun to read, not for rebuilding snapshots: it does not
        # count towards the next base
        since_base = self.since_base + len(data)
        if since_base > self.gap:
            return self._base(ctx, reason, step, changes=changes, soon=soon, follow=follow)
        if changes.completed or changes.answers:
            calls = calls_done(ctx, changes, self.codes, encoded, delta.get("store_set"))
            text = dumps(calls)  # {"done": [...], "answers": [...]}
            data = f"{data[:-1]},{text[1:]}" if len(data) > 2 else text
        if len(encoded) > 4096:  # events queued and never a completed call's input
            encoded.clear()

        self.since_base = since_base
        return self._save(self._next("delta", reason, step, state, data), soon, follow)

    def _base(
        self,
        ctx: Context[Any],
        reason: str,
        step: str | None,
        changes: Changes | None = None,
        soon: bool = False,
        follow: bool = False,
    ) -> Written:
        """A whole snapshot as a record, when the deltas since the last grew past it."""
        state = ctx._state
        snapshot = snapshot_of(ctx, raw=True)
        if changes is not None and (changes.completed or changes.answers):
            # the calls since the record before, as a delta has them
            snapshot.update(calls_done(ctx, changes, self.codes, None, snapshot["store"]))
        data = dumps(snapshot)
        self.since = delta_baseline(ctx)
        record = self._next("base", reason, step, state, data)
        written = self._save(record, soon, follow)
        self.gap = max(len(data), self.min_base_gap)
        self.since_base = 0
        return written

    def _next(self, kind: str, reason: str, step: str | None, state: Any, data: str) -> Record:
        return self._numbered(kind, reason, step, state.status, state.steps_done, data)

    def _numbered(
        self, kind: str, reason: str, step: str | None, status: str, steps: int, data: str
    ) -> Record:
        """The record after the last one numbered, written now. (Made as the tuple it is:
        NamedTuple's own constructor costs twice as much.) It names the record before it,
        by number and digest (``chain``)."""
        if self.last_digest is not None:
            data = link(data, self.seq, self.last_digest)
        self.last_digest = digest(kind, data)
        return _record(
            (
                self.run_id,
                self.seq + 1,
                kind,
                reason,
                step,
                status,
                steps,
                time.time(),
                data,
            )
        )

    def _save(self, record: Record, soon: bool = False, follow: bool = False) -> Written:
        """Have ``record`` written by the writer's thread; the future the run awaits before
        it goes on: for ``record`` itself, or with ``follow`` for the record before it (the
        run goes on while this one is written), or None with ``soon`` (a record of "async"
        nothing waits for)."""
        writer = self.writer
        assert writer is not None, "records are written only while the run is open"
        covered, self.recorded_steps = record.steps - self.recorded_steps, record.steps
        writer.put(record)  # numbered now: the next record follows it whatever happens
        self.seq = record.seq
        writer.write_soon()
        if soon:
            self.unwritten.append((record.seq, covered))
            self.unwritten_steps += covered
            return None
        if follow:  # the run goes on while this record is written, once the one before is
            before = record.seq - 1
            return None if writer.written >= before else writer.wait_for(before)
        return writer.wait_for(record.seq)

    def _lost_checkpoint(
        self, record: Record, exc: Exception, last_good: int, through: Record | None = None
    ) -> SnapshotError:
        """The error a run fails with when ``record`` (and the records after it up to
        ``through``, a batch) could not be saved, on the loop or by the writer;
        ``last_good`` is the seq of the last record in the store."""
        what = _what(record)
        if through is not None and through.seq != record.seq:
            what = (
                f"checkpoints of snapshots {record.seq} to {through.seq} (from the one {what} "
                f"to the one {_what(through)})"
            )
        else:
            what = f"checkpoint {what} (snapshot {record.seq})"
        taken = self.keeper.taken_over() if self.keeper is not None else None
        if taken is not None:  # another process took the run over with force=True
            return taken
        last = (
            f"Its last good checkpoint is snapshot {last_good}"
            if last_good >= 0
            else "It has no checkpoint"
        )
        error = SnapshotError(
            f"run {self.run_id!r} stopped: the {what} could not be saved to {self.store!r}. "
            f"{last}; once the store works again, continue with "
            f"workflow.resume({self.run_id!r}) (steps whose checkpoint was lost run again). "
            f"Cause: {exc}"
        )
        error.__cause__ = exc
        return error


def _what(record: Record) -> str:
    """Which checkpoint ``record`` is, in words: "after step 'x'", "of its end (done)"."""
    if record.reason == "step":
        return f"after step {record.step!r}" if record.step else "after a step"
    return {
        "replay": f"after replaying step {record.step!r}",
        "journal": f"of a ctx.once result in step {record.step!r}",
        "status": f"of its status ({record.status})",
    }.get(record.reason, f"of its end ({record.status})")


def _check_event_classes(ctx: Context[Any]) -> None:
    """Every event class of the workflow must be found again by name when a snapshot is
    loaded; say so before the run starts rather than at its first checkpoint."""
    lost = []
    for spec in ctx._specs.values():
        for cls in (*spec.accepts, *spec.produces):
            name = qualified_name(cls)
            try:
                found = find_class(name, kinds=("event",))
            except ContextSerdeError:
                found = None
            if found is not cls and cls.__qualname__ not in lost:
                lost.append(cls.__qualname__)
    if lost:
        raise ContextSerdeError(
            f"{type(ctx.workflow).__name__} cannot be checkpointed: its event classes "
            f"{', '.join(lost)} are defined inside a function, so a snapshot could not find "
            f"them again by name; define them at module level (or in a notebook cell), or "
            f"name them with notebook_workflows.serialization.register(cls, name='module:Name')"
        )


def wrap(checkpoint: Any, *, continuing: bool, durability: str = "sync") -> Any:
    """What ``run(checkpoint=...)`` hands to the driver: hook objects as they are, a store
    wrapped in a ``Recorder``."""
    if checkpoint is None or hasattr(checkpoint, "step_completed"):
        return checkpoint
    return Recorder(checkpoint, continuing=continuing, durability=durability)
