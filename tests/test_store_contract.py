"""One contract, every store: MemoryStore, SQLiteStore, RedisStore and PostgresStore keep runs,
history, forks, pruning, errors, their lifecycle and run leases the same way.

Redis and PostgreSQL run as real servers that the tests start (tests/servers.py); without the
programs those cases skip with the reason.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Counter, Docs
from helpers import until
from servers import make_store as make

from notebook_workflows import SnapshotError
from notebook_workflows.checkpoint import (
    BaseStore,
    LeaseStore,
    Owner,
    Record,
    RunOwnedError,
    SnapshotStore,
)
from notebook_workflows.checkpoint.base import dumps


@pytest.fixture
def store(any_store: BaseStore) -> BaseStore:
    return any_store  # every store in turn (servers.py)


# -- keeping runs ---------------------------------------------------------------------------------


async def test_runs_history_fork_prune_and_delete(store: BaseStore, tmp_path: Path) -> None:
    assert isinstance(store, SnapshotStore) and isinstance(store, LeaseStore)
    handler = Docs().run(checkpoint=store, ids=[5, 4, 3, 2, 1], log=str(tmp_path / "log"))
    assert await handler == [1, 2, 3, 4, 5]
    [info] = store.runs()
    assert (info.run_id, info.workflow, info.status, info.steps, info.parent) == (
        handler.run_id, "ckpt_flows:Docs", "done", 11, None
    )  # fmt: skip
    history = store.history(handler.run_id)
    assert [s.seq for s in history] == list(range(13))
    assert history[-1].context == store.latest(handler.run_id).context
    assert store.snapshot(handler.run_id, -1).seq == 12
    fork = Docs().resume(handler.run_id, store=store, at=3)
    assert await fork == [1, 2, 3, 4, 5]
    forked = store.run_info(fork.run_id)
    assert forked is not None and (forked.parent, forked.parent_seq) == (handler.run_id, 3)
    store.prune(compact=True)
    assert [s.seq for s in store.history(handler.run_id)] == [12]
    assert store.latest(handler.run_id).context == history[-1].context
    store.delete(handler.run_id)
    assert [r.run_id for r in store.runs()] == [fork.run_id]
    with pytest.raises(SnapshotError, match=r"has no run .*recent runs"):
        store.latest(handler.run_id)


async def test_unknown_runs_and_run_ids_in_use_are_refused_naming_the_store(
    store: BaseStore,
) -> None:
    with pytest.raises(SnapshotError, match=r"has no run 'nope': it holds no runs at all"):
        store.latest("nope")
    await Counter().run(checkpoint=store, n=2, run_id="nightly")
    with pytest.raises(SnapshotError) as caught:
        await Counter().run(checkpoint=store, n=1, run_id="nightly")
    message = str(caught.value)
    assert repr(store) in message and "already has a run 'nightly'" in message
    assert "resume('nightly')" in message
    with pytest.raises(SnapshotError, match=r"run 'nightly' .* has no snapshot 9: .* 0 to 4"):
        store.snapshot("nightly", 9)


async def test_a_resumed_run_appends_to_its_history(store: BaseStore) -> None:
    Counter.ran = []
    handler = Counter().run(checkpoint=store, n=40, delay=0.002, run_id="long")
    await until(lambda: len(Counter.ran) >= 5, what="five ticks")
    await handler.cancel()
    assert store.latest("long").status == "cancelled"
    resumed = Counter().resume("long", store=store)
    assert await resumed == 40
    history = store.history("long")
    assert [s.seq for s in history] == list(range(len(history)))
    assert "resume" in [s.reason for s in history]


# -- lifecycle ------------------------------------------------------------------------------------


def test_a_store_is_a_context_manager_and_refuses_use_once_closed(
    store_spec: tuple[str, str],
) -> None:
    with make(*store_spec) as store:
        Counter().run_sync(checkpoint=store, n=1, run_id="one")
        assert not store.closed
    assert store.closed
    store.close()  # closing twice is fine
    for use in (
        store.runs,
        lambda: store.latest("one"),
        lambda: store.delete("one"),
        lambda: store.lease_of("one"),
        lambda: store.acquire_lease("one", Owner.current()),
    ):
        with pytest.raises(SnapshotError, match=r"is closed .*make a new store"):
            use()
    with pytest.raises(SnapshotError, match="is closed"):
        Counter().run_sync(checkpoint=store, n=1, run_id="two")
    if store_spec[0] != "memory":
        with make(*store_spec) as again:  # nothing saved was lost by closing
            assert [r.run_id for r in again.runs()] == ["one"]


# -- leases ---------------------------------------------------------------------------------------


def foreign(pid: int = 4242) -> Owner:
    return Owner("elsewhere.example", pid, f"foreign-{pid}", None)


def test_a_lease_is_acquired_renewed_and_released(store: BaseStore) -> None:
    me = Owner.current()
    assert store.lease_of("r") is None
    lease = store.acquire_lease("r", me, ttl=5)
    assert lease.owner == me and 4 < lease.expires_in() <= 5
    assert store.lease_of("r") == lease
    time.sleep(0.01)
    assert store.renew_lease("r", me, ttl=10)
    renewed = store.lease_of("r")
    assert renewed is not None and renewed.since == lease.since
    assert renewed.expires_at > lease.expires_at
    again = store.acquire_lease("r", me, ttl=5)  # taking one's own lease again renews it
    assert again.since == lease.since
    store.release_lease("r", Owner.current())  # not the owner: nothing happens
    assert store.lease_of("r") is not None
    store.release_lease("r", me)
    assert store.lease_of("r") is None
    assert not store.renew_lease("r", me)  # released: lost
    with pytest.raises(ValueError, match="ttl"):
        store.acquire_lease("r", me, ttl=0)


def test_a_live_owner_is_named_and_force_takes_over(store: BaseStore) -> None:
    first, second = Owner.current(), Owner.current()  # this process, two runs
    store.acquire_lease("r", first, ttl=30)
    with pytest.raises(RunOwnedError) as caught:
        store.acquire_lease("r", second)
    message = str(caught.value)
    assert isinstance(caught.value, SnapshotError)
    assert f"run 'r' in {store!r} is owned by process {os.getpid()} on host" in message
    assert "still running" in message and "expires in 30 s" in message
    assert "since 20" in message and "resume('r', force=True)" in message
    assert caught.value.lease is not None and caught.value.lease.owner == first
    taken = store.acquire_lease("r", second, force=True)
    assert taken.owner == second and store.lease_of("r") == taken
    assert not store.renew_lease("r", first)  # the first owner learns it lost the run


def test_a_foreign_host_lease_blocks_until_it_expires(store: BaseStore) -> None:
    store.acquire_lease("r", foreign(), ttl=1.0)
    store.acquire_lease("s", foreign(), ttl=30)
    me = Owner.current()
    with pytest.raises(RunOwnedError) as caught:
        store.acquire_lease("r", me)
    message = str(caught.value)
    assert "process 4242 on host 'elsewhere.example'" in message
    assert "another host" in message and "resume('r', force=True)" in message
    time.sleep(1.1)
    assert store.lease_of("r") is None  # expired
    assert store.acquire_lease("r", me).owner == me
    assert store.acquire_lease("s", me, force=True).owner == me


def test_a_dead_or_reused_pid_on_this_host_never_blocks(store: BaseStore) -> None:
    import socket
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()  # exited and reaped: its pid names no process
    gone = Owner(socket.gethostname(), child.pid, "gone", None)
    store.acquire_lease("r", gone, ttl=30)
    assert store.acquire_lease("r", Owner.current()).owner.token != "gone"
    # a live pid (ours) with another start time: the pid was reused by a later process
    reused = Owner(socket.gethostname(), os.getpid(), "reused", 12345)
    store.acquire_lease("s", reused, ttl=30)
    assert store.acquire_lease("s", Owner.current()).owner.token != "reused"


async def test_the_lease_keeper_renews_off_the_loop_reports_loss_and_releases(
    store: BaseStore,
) -> None:
    from notebook_workflows.checkpoint import LeaseKeeper

    me = Owner.current()
    store.acquire_lease("r", me, ttl=1.2)
    lost: list[SnapshotError] = []
    keeper = LeaseKeeper(store, "r", me, ttl=1.2, on_lost=lost.append).start()
    await asyncio.sleep(1.7)  # longer than the ttl: only renewals keep it
    held = store.lease_of("r")
    assert held is not None and held.owner == me and keeper.renewals >= 2
    await keeper.aclose()
    assert store.lease_of("r") is None  # released on stop

    store.acquire_lease("s", me, ttl=0.6)
    keeper = LeaseKeeper(store, "s", me, ttl=0.6, on_lost=lost.append).start()
    thief = Owner.current()
    store.acquire_lease("s", thief, force=True)
    await until(lambda: lost, what="the lease lost")
    [error] = lost
    assert isinstance(error, RunOwnedError) and "run 's' lost its lease" in str(error)
    assert f"process {os.getpid()}" in str(error)
    await keeper.aclose()
    assert store.lease_of("s") is not None and store.lease_of("s").owner == thief  # type: ignore[union-attr]


# -- leases between processes ---------------------------------------------------------------------


def race(spec: tuple[str, str], run_id: str, ready: Any, done: Any, results: Any) -> None:
    store = make(*spec)
    ready.wait(30)
    try:
        store.acquire_lease(run_id, Owner.current(), ttl=30)
        results.put(("won", os.getpid(), ""))
    except RunOwnedError as exc:
        results.put(("refused", os.getpid(), str(exc)))
    except BaseException as exc:  # report it: an exit code alone says little
        results.put(("error", os.getpid(), repr(exc)))
    done.wait(30)  # stay alive until every racer tried: a dead owner would be taken over


def test_processes_racing_for_one_run_exactly_one_wins(shared_spec: tuple[str, str]) -> None:
    fork = multiprocessing.get_context("fork")
    n = 4
    ready, done, results = fork.Barrier(n + 1), fork.Barrier(n + 1), fork.Queue()
    racers = [
        fork.Process(target=race, args=(shared_spec, "contested", ready, done, results))
        for _ in range(n)
    ]
    for racer in racers:
        racer.start()
    try:
        ready.wait(30)
        outcomes = [results.get(timeout=30) for _ in range(n)]
        done.wait(30)
    finally:
        for racer in racers:
            racer.join(30)
            if racer.exitcode is None:
                racer.kill()
    assert sorted(o[0] for o in outcomes) == ["refused"] * (n - 1) + ["won"], outcomes
    [(_, winner, _)] = [o for o in outcomes if o[0] == "won"]
    for _, _, message in (o for o in outcomes if o[0] == "refused"):
        assert f"owned by process {winner} on host" in message


def hold(spec: tuple[str, str], run_id: str, held: Any) -> None:
    store = make(*spec)
    store.acquire_lease(run_id, Owner.current(), ttl=60)
    held.set()
    time.sleep(60)  # until killed


def test_a_killed_owner_is_taken_over_at_once(shared_spec: tuple[str, str]) -> None:
    fork = multiprocessing.get_context("fork")
    held = fork.Event()
    child = fork.Process(target=hold, args=(shared_spec, "orphan", held))
    child.start()
    try:
        assert held.wait(30)
        with make(*shared_spec) as store:
            with pytest.raises(RunOwnedError, match=rf"owned by process {child.pid} on host"):
                store.acquire_lease("orphan", Owner.current())
            child.kill()  # SIGKILL: no chance to release
            child.join(10)
            started = time.monotonic()
            lease = store.acquire_lease("orphan", Owner.current())
            assert lease.owner.pid == os.getpid()
            # at once, not after the 60 s ttl (generous, for a loaded machine)
            assert time.monotonic() - started < 20
    finally:
        if child.is_alive():
            child.kill()
        child.join(10)


def test_a_clash_of_writers_names_the_owner_of_the_run(store: BaseStore) -> None:
    Counter().run_sync(checkpoint=store, n=1, run_id="r")
    owner = Owner.current()
    store.acquire_lease("r", owner)
    latest = store.latest("r")
    from notebook_workflows.checkpoint import Record

    clash = Record("r", latest.seq, "delta", "step", "tick", "running", 9, 1.0, "{}")
    with pytest.raises(SnapshotError) as caught:
        store.save(clash)
    message = str(caught.value)
    assert f"already has snapshot {latest.seq} of run 'r'" in message
    assert f"owned by process {os.getpid()} on host" in message and owner.token in message
    assert store.latest("r").context == latest.context  # nothing saved was touched


# -- batches (save_many, what durability="async" writes) ------------------------------------------


def batch(
    run_id: str, first: int, count: int, base: tuple[int, dict[str, Any]] | None = None
) -> list[Record]:
    """``count`` records from seq ``first``: deltas setting ``n`` to their seq, and, with
    ``base=(seq, context)``, that whole snapshot at that seq."""
    out = []
    for seq in range(first, first + count):
        kind, data = "delta", dumps({"store_set": {"n": seq}})
        if base is not None and seq == base[0]:
            kind, data = "base", dumps(base[1])
        out.append(Record(run_id, seq, kind, "step", "tick", "running", seq, 1.0 + seq, data))
    return out


def started(store: BaseStore) -> int:
    """A run 'r' in the store; returns its latest seq."""
    Counter().run_sync(checkpoint=store, n=1, run_id="r")
    info = store.run_info("r")
    assert info is not None
    return info.seq


def test_save_many_writes_a_batch_with_a_base_in_it(store: BaseStore) -> None:
    last = started(store)
    whole = store.latest("r").context | {"store": {"from_base": last + 10}}
    store.save_many(batch("r", last + 1, 20, base=(last + 10, whole)))
    info = store.run_info("r")
    assert info is not None and (info.seq, info.steps, info.updated_at) == (
        last + 20, last + 20, 1.0 + last + 20
    )  # fmt: skip
    history = store.history("r")
    assert [s.seq for s in history] == list(range(last + 21))
    assert store.snapshot("r", last + 10).kind == "base"
    # loading after the batch's base starts from it (the store knows it is a base)
    assert store.snapshot("r", last + 15).context["store"] == {
        "from_base": last + 10, "n": last + 15
    }  # fmt: skip
    assert store.snapshot("r", last + 9).context["store"]["n"] == last + 9
    assert history[-1].context["store"]["n"] == last + 20
    store.save_many(batch("r", last + 21, 3))  # a batch after a batch
    assert store.latest("r").seq == last + 23


def test_save_many_writes_all_or_nothing(store: BaseStore) -> None:
    last = started(store)
    before = store.latest("r").context
    with pytest.raises(SnapshotError) as caught:
        store.save_many(batch("r", last - 2, 8))  # its first three are taken
    message = str(caught.value)
    assert repr(store) in message and "of run 'r'" in message
    assert re.search(rf"already has (snapshot {last - 2}|one of snapshots {last - 2} to)", message)
    assert store.run_info("r").seq == last and store.latest("r").context == before
    assert len(store.history("r")) == last + 1  # nothing of the batch went in
    store.save_many(batch("r", last + 1, 4))
    with pytest.raises(SnapshotError, match=rf"one of snapshots|snapshot {last + 4}"):
        store.save_many(batch("r", last + 4, 4))  # only its first one is taken
    assert store.run_info("r").seq == last + 4


def test_save_many_refuses_a_deleted_run_and_records_that_do_not_follow_each_other(
    store: BaseStore,
) -> None:
    last = started(store)
    records = batch("r", last + 1, 4)
    with pytest.raises(ValueError, match=r"consecutive records of one run: record 2 is snapshot"):
        store.save_many([*records[:2], records[3]])
    with pytest.raises(ValueError, match="consecutive records of one run"):
        store.save_many([records[0], records[1]._replace(run_id="other")])
    store.save_many([])  # nothing to do
    store.delete("r")
    with pytest.raises(SnapshotError, match=r"no longer has run 'r' .* were not saved"):
        store.save_many(records)
    assert store.run_info("r") is None
