"""Run leases, the rules themselves (lease.py): who may take a run over, and the keeper.
The same rules on every store, and between processes, are in test_store_contract.py."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time

from helpers import until

from notebook_workflows import SnapshotError
from notebook_workflows.checkpoint import Lease, LeaseKeeper, MemoryStore, Owner, RunOwnedError
from notebook_workflows.checkpoint.lease import may_take, process_alive

HOST = socket.gethostname()


def lease_of(owner: Owner, ttl: float = 30.0) -> Lease:
    now = time.time()
    return Lease("r", owner, now, now + ttl)


def test_process_alive_tells_a_live_process_from_a_gone_or_reused_pid() -> None:
    me = Owner.current()
    assert process_alive(me.pid, me.started)
    assert me.started is not None  # this system has /proc: pid reuse is caught
    assert not process_alive(me.pid, me.started + 1)  # same pid, another start: reused
    child = subprocess.Popen(["true"])
    child.wait()
    assert not process_alive(child.pid) and not process_alive(0)


def test_the_rules_of_taking_a_lease_over() -> None:
    now = time.time()
    me = Owner.current()
    live_here = lease_of(Owner.current())
    assert not may_take(live_here, me, now)
    assert may_take(live_here, me, now, force=True)
    assert may_take(lease_of(me), me, now)  # one's own
    assert may_take(lease_of(Owner.current(), ttl=-1), me, now)  # expired
    elsewhere = lease_of(Owner("elsewhere", os.getpid(), "x", None))
    assert not may_take(elsewhere, me, now)  # a foreign pid says nothing about that host
    assert may_take(elsewhere, me, now + 31)  # ...until the lease expires


def test_tokens_tell_two_runs_of_one_process_apart() -> None:
    a, b = Owner.current(), Owner.current()
    assert (
        (a.host, a.pid, a.started) == (b.host, b.pid, b.started) == (HOST, os.getpid(), a.started)
    )
    assert a.token != b.token


class Flaky(MemoryStore):
    """A store whose renewals fail while ``down`` is set (a server gone away)."""

    down = False

    def renew_lease(self, run_id: str, owner: Owner, ttl: float = 30.0) -> bool:
        if self.down:
            raise SnapshotError(f"{self!r} could not renew: the server did not answer")
        return super().renew_lease(run_id, owner, ttl)


async def test_the_keeper_rides_out_a_short_outage_and_reports_a_long_one_on_the_loop() -> None:
    store = Flaky()
    me = Owner.current()
    store.acquire_lease("r", me, ttl=1.5)
    lost: list[tuple[SnapshotError, threading.Thread]] = []
    keeper = LeaseKeeper(
        store, "r", me, ttl=1.5, on_lost=lambda e: lost.append((e, threading.current_thread()))
    ).start()
    store.down = True
    await asyncio.sleep(0.7)  # the renewal at 0.5 s fails; the lease holds until 1.5 s
    store.down = False
    await asyncio.sleep(1.1)  # the renewal at 1 s succeeds
    assert lost == [] and keeper.renewals >= 1
    store.down = True
    await until(lambda: lost, what="the lease lost")
    [(error, thread)] = lost
    assert thread is threading.main_thread()  # delivered on the event loop's thread
    assert "run 'r' lost its lease" in str(error) and "could not be renewed" in str(error)
    assert not isinstance(error, RunOwnedError)
    keeper.stop()
    keeper.stop()  # twice is fine


async def test_a_keeper_whose_run_was_taken_over_with_force_says_so_naming_the_new_owner() -> None:
    store = MemoryStore()
    me = Owner.current()
    store.acquire_lease("r", me, ttl=0.6)
    lost: list[SnapshotError] = []
    keeper = LeaseKeeper(store, "r", me, ttl=0.6, on_lost=lost.append).start()
    thief = Owner.current()
    store.acquire_lease("r", thief, force=True)
    await until(lambda: lost, what="the lease lost")
    [error] = lost
    message = str(error)
    assert isinstance(error, RunOwnedError) and error.lease is not None
    assert error.lease.owner == thief
    assert f"it was taken over by process {os.getpid()} on host {HOST!r} at " in message
    assert "(force=True) while this process still ran it" in message
    assert "expired" not in message and "could not" not in message
    keeper.stop()
    assert store.lease_of("r").owner == thief  # type: ignore[union-attr]  # not released
