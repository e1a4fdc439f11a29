"""Run ownership: one process at a time continues a run, and a dead owner never blocks.

A *lease* is kept in the store next to the run's records (a row in SQLite and PostgreSQL, a
key with an expiry in Redis, a dict entry in ``MemoryStore``). It names its owner: the host,
the process id, the process's start time, a random token (one per run or resume, so two runs
in one process are two owners), since when it is held and until when.

The rules, applied by ``may_take`` inside the store's atomic read-decide-write
(``BaseStore._swap_lease``):

* the same owner (same token) may always take its own lease again (that renews it);
* ``force=True`` takes any lease: the user said the owner is gone or stuck;
* an expired lease is free (``DEFAULT_TTL``, 30 s, unless renewed; ``LeaseKeeper`` renews
  every ttl/3);
* on the same host, a lease whose process is gone is free at once. A pid can be reused, so the
  owner's start time (field 22 of ``/proc/<pid>/stat``, read once per process) is compared
  too when the system has ``/proc``; elsewhere only the pid's liveness is checked;
* a live owner on this host, or any unexpired owner on another host, keeps the lease: whoever
  asks gets ``RunOwnedError`` naming the owner and the way to take over.

Design decisions:

* Expiry compares wall clocks (``time.time()``) written by each host: hosts that share a store
  must keep their clocks roughly in time (NTP), as they do for everything else. Redis also
  expires the key itself (``PX``), so a lease there vanishes even if nobody looks.
* Hosts are told apart by ``socket.gethostname()``: two containers sharing one name but not
  one process table would see each other's owners as dead. Give containers their own names.
* Renewal happens off the event loop (``LeaseKeeper``'s thread): a store that hangs delays a
  renewal, never a step.
* An owner whose lease was taken while it was still valid was taken over with
  ``force=True`` (a live owner is never free otherwise): the keeper tells it so, naming the
  new owner, rather than reporting a lost lease as if the store had failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import SnapshotError

__all__ = [
    "DEFAULT_TTL",
    "Lease",
    "LeaseKeeper",
    "LeaseStore",
    "Leasing",
    "Owner",
    "RunOwnedError",
    "may_take",
    "process_alive",
]

DEFAULT_TTL = 30.0  # seconds a lease lasts unless renewed

KEEP: Any = object()  # returned by a lease change: write nothing


class RunOwnedError(SnapshotError):
    """The run is continued by another process (named in the message and in ``.lease``)."""

    def __init__(self, message: str, lease: Lease | None = None) -> None:
        super().__init__(message)
        self.lease = lease


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None without ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):  # a zombie has exited already
        return None
    return int(fields[19])


@dataclass(frozen=True)
class Owner:
    """Who holds a lease: a process on a host, and a token of its own for each run."""

    host: str
    pid: int
    token: str
    started: int | None = None  # the process's start time (/proc ticks), against pid reuse

    @classmethod
    def current(cls) -> Owner:
        """An owner for one run of this process, with a fresh random token."""
        return cls(socket.gethostname(), os.getpid(), secrets.token_hex(8), _own_start())

    def describe(self) -> str:
        return f"process {self.pid} on host {self.host!r}"


_OWN_START: dict[int, int | None] = {}


def _own_start() -> int | None:
    pid = os.getpid()  # per pid: a forked child is another process
    if pid not in _OWN_START:
        _OWN_START[pid] = _start_time(pid)
    return _OWN_START[pid]


@dataclass(frozen=True)
class Lease:
    """Run ``run_id`` is owned by ``owner`` since ``since`` until ``expires_at`` (epoch s)."""

    run_id: str
    owner: Owner
    since: float
    expires_at: float

    def alive(self, now: float | None = None) -> bool:
        return self.expires_at > (time.time() if now is None else now)

    def expires_in(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)

    def to_json(self) -> dict[str, Any]:
        o = self.owner
        return {
            "run_id": self.run_id,
            "host": o.host,
            "pid": o.pid,
            "token": o.token,
            "started": o.started,
            "since": self.since,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lease:
        owner = Owner(data["host"], int(data["pid"]), data["token"], data.get("started"))
        return cls(data["run_id"], owner, float(data["since"]), float(data["expires_at"]))

    def row(self) -> tuple[Any, ...]:
        """The lease as the SQL stores' columns: run_id, host, pid, started, token, since,
        expires_at."""
        o = self.owner
        return (self.run_id, o.host, o.pid, o.started, o.token, self.since, self.expires_at)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Lease:
        run_id, host, pid, started, token, since, expires_at = row
        started = None if started is None else int(started)
        return cls(run_id, Owner(host, int(pid), token, started), since, expires_at)


LEASE_COLUMNS = "run_id, host, pid, started, token, since, expires_at"


def process_alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` of this host still runs (and, when ``started`` is known and
    ``/proc`` is there, is the same process, not a later one given the same pid)."""
    if pid <= 0:
        return False
    if started is not None and os.path.isdir("/proc/self"):
        return _start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def may_take(current: Lease, owner: Owner, now: float, force: bool = False) -> bool:
    """Whether ``owner`` may take over ``current`` (the module docstring gives the rules)."""
    if force or current.owner.token == owner.token or not current.alive(now):
        return True
    held = current.owner
    if held.host == socket.gethostname():
        return not process_alive(held.pid, held.started)
    return False


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def owned_message(store: object, lease: Lease, now: float) -> str:
    """Why ``lease`` keeps others out of the run, and how to take over."""
    held = lease.owner
    here = held.host == socket.gethostname()
    left = max(0.0, lease.expires_in(now))
    state = (
        f"that process is still running; its lease expires in {left:.0f} s unless renewed"
        if here
        else f"from another host, so it is taken over only when its lease expires, in "
        f"{left:.0f} s unless renewed"
    )
    return (
        f"run {lease.run_id!r} in {store!r} is owned by {held.describe()} since "
        f"{_when(lease.since)} ({state}): a run is continued by one process at a time. Wait "
        f"for it to finish, or, if that process is gone or stuck, take the run over with "
        f"workflow.resume({lease.run_id!r}, force=True)"
    )


@runtime_checkable
class LeaseStore(Protocol):
    """The ownership part of the store protocol (``lease.py``): every built-in store has it.

    Kept apart from ``SnapshotStore`` so a store of one's own written for the first protocol
    still checkpoints; the engine leases a run when ``isinstance(store, LeaseStore)``.
    """

    def acquire_lease(
        self, run_id: str, owner: Owner, ttl: float = DEFAULT_TTL, force: bool = False
    ) -> Lease: ...

    def renew_lease(self, run_id: str, owner: Owner, ttl: float = DEFAULT_TTL) -> bool: ...

    def release_lease(self, run_id: str, owner: Owner) -> None: ...

    def lease_of(self, run_id: str) -> Lease | None: ...

    def close(self) -> None: ...


class Leasing:
    """The lease methods of ``BaseStore``, on top of its ``_lease`` and ``_swap_lease``
    primitives and its ``_ensure_open`` / ``_failing`` helpers."""

    if TYPE_CHECKING:

        def _ensure_open(self) -> None: ...

        def _failing(self, action: str) -> contextlib.AbstractContextManager[None]: ...

        def _lease(self, run_id: str) -> Lease | None: ...

        def _swap_lease(
            self, run_id: str, change: Callable[[Lease | None], Lease | object | None]
        ) -> Lease | None: ...

    def acquire_lease(
        self, run_id: str, owner: Owner, ttl: float = DEFAULT_TTL, force: bool = False
    ) -> Lease:
        """Make ``owner`` the one process that continues run ``run_id``, for ``ttl`` seconds
        (renew before then). Raises ``RunOwnedError`` naming the owner when another one holds
        it, unless that owner's process is gone (same host), its lease expired, or ``force``.
        Acquiring again with the same owner renews."""
        if ttl <= 0:
            raise ValueError(f"a lease's ttl is a number of seconds above 0, got {ttl!r}")
        self._ensure_open()

        def take(current: Lease | None) -> Lease:
            now = time.time()
            if current is not None and not may_take(current, owner, now, force):
                raise RunOwnedError(owned_message(self, current, now), current)
            mine = current is not None and current.owner.token == owner.token
            since = current.since if mine and current is not None else now
            return Lease(run_id, owner, since, now + ttl)

        with self._failing(f"take the lease of run {run_id!r}"):
            lease = self._swap_lease(run_id, take)
        assert lease is not None
        return lease

    def renew_lease(self, run_id: str, owner: Owner, ttl: float = DEFAULT_TTL) -> bool:
        """Extend ``owner``'s lease by ``ttl`` seconds from now; False when it is no longer
        ``owner``'s (expired, released, or taken over by another)."""
        self._ensure_open()

        def renew(current: Lease | None) -> Lease | object:
            now = time.time()
            if current is None or current.owner.token != owner.token or current.expires_at <= now:
                return KEEP
            return Lease(run_id, owner, current.since, now + ttl)

        with self._failing(f"renew the lease of run {run_id!r}"):
            lease = self._swap_lease(run_id, renew)
        return lease is not None and lease.owner.token == owner.token and lease.alive()

    def release_lease(self, run_id: str, owner: Owner) -> None:
        """Give the run up: remove ``owner``'s lease (another owner's is left alone)."""
        self._ensure_open()

        def release(current: Lease | None) -> Lease | object | None:
            if current is not None and current.owner.token == owner.token:
                return None
            return KEEP

        with self._failing(f"release the lease of run {run_id!r}"):
            self._swap_lease(run_id, release)

    def lease_of(self, run_id: str) -> Lease | None:
        """Who owns the run now: its unexpired lease, or None."""
        self._ensure_open()
        with self._failing(f"read the lease of run {run_id!r}"):
            lease = self._lease(run_id)
        return lease if lease is not None and lease.alive() else None


class LeaseKeeper:
    """Keeps a run's lease while the run goes on: renews it every ``ttl / 3`` seconds in a
    thread of its own (never on the event loop), calls ``on_lost(error)`` once if the lease
    is lost (taken over, or not renewable before it expired), and releases it on ``stop()``.

    Acquire first (``store.acquire_lease``, so a refusal comes out before the run starts),
    then ``keeper.start()``; ``await keeper.aclose()`` or ``keeper.stop()`` at the end.
    ``on_lost`` runs on the event loop that was running at ``start()`` when there was one
    (``loop.call_soon_threadsafe``), otherwise in the keeper's thread.
    """

    def __init__(
        self,
        store: LeaseStore,
        run_id: str,
        owner: Owner,
        ttl: float | None = None,
        on_lost: Callable[[SnapshotError], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.ttl = DEFAULT_TTL if ttl is None else ttl
        self.expires_at = 0.0  # of the lease as this keeper last renewed it
        self.on_lost = on_lost
        self.lost: SnapshotError | None = None
        self.renewals = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> LeaseKeeper:
        if self._thread is not None:
            return self
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._keep, name=f"lease-keeper {self.run_id}", daemon=True
        )
        self._thread.start()
        return self

    def _keep(self) -> None:
        self.expires_at = time.time() + self.ttl
        while not self._stop.wait(self.ttl / 3):
            try:
                kept = self.store.renew_lease(self.run_id, self.owner, self.ttl)
            except SnapshotError as exc:
                if time.time() < self.expires_at:
                    continue  # the store may answer again before the lease runs out
                self._report(
                    SnapshotError(
                        f"run {self.run_id!r} lost its lease in {self.store!r}: it could not "
                        f"be renewed before it expired ({exc}). Once the store answers, "
                        f"continue the run with workflow.resume({self.run_id!r})"
                    )
                )
                return
            if not kept:
                self._report(self.taken_over() or self._lapsed())
                return
            self.renewals += 1
            self.expires_at = time.time() + self.ttl

    def taken_over(self) -> RunOwnedError | None:
        """The error this keeper's run stops with if another owner holds its lease now (it
        was taken over), else None. For a write of the run that the store refused as already
        written: the other owner wrote it."""
        holder = None
        with contextlib.suppress(SnapshotError):
            holder = self.store.lease_of(self.run_id)
        if holder is None or holder.owner.token == self.owner.token:
            return None
        who = f"{holder.owner.describe()} at {_when(holder.since)}"
        if holder.since < self.expires_at:  # taken while valid: only force=True does that
            how = f"it was taken over by {who} (force=True) while this process still ran it"
        else:
            how = f"it expired before it was renewed, and {who} took the run over"
        return RunOwnedError(
            f"run {self.run_id!r} lost its lease in {self.store!r}: {how}. The run goes on "
            f"there; this process stops driving it",
            holder,
        )

    def _lapsed(self) -> RunOwnedError:
        return RunOwnedError(
            f"run {self.run_id!r} lost its lease in {self.store!r}: it expired before it was "
            f"renewed, or another process took the run over and has let it go since; nobody "
            f"holds it now. This process stops driving it: continue it with "
            f"workflow.resume({self.run_id!r}) unless another process finished it"
        )

    def _report(self, error: SnapshotError) -> None:
        self.lost = error
        if self.on_lost is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.on_lost, error)
                return
        self.on_lost(error)

    def stop(self, release: bool = True) -> None:
        """Stop renewing (waits for the thread, at most one store call) and, with
        ``release``, give the lease up. Calling it twice is harmless."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        # a LeaseStore of one's own need not have BaseStore's ``closed``
        if release and self.lost is None and not getattr(self.store, "closed", False):
            with contextlib.suppress(SnapshotError):  # an expired lease frees itself anyway
                self.store.release_lease(self.run_id, self.owner)

    async def aclose(self, release: bool = True) -> None:
        """``stop`` without blocking the event loop."""
        await asyncio.to_thread(self.stop, release)
