"""A store that stops answering never freezes the event loop: every checkpoint write (and
``ctx.once`` record, and the run's end) is made by the run's writer thread while the loop
goes on; the run waits for it, the notebook does not. Each store is frozen for a few seconds
in the middle of a run (SIGSTOP for Redis and PostgreSQL, an exclusive lock held by another
connection for SQLite) while a ticker measures how late the loop wakes it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import make_store, store_location

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.errors import SnapshotError

FROZEN = 3.0  # seconds the store does not answer
TICK = 0.01


class Hop(Event):
    i: int


class Slowly(Workflow):
    """Hops that each wait a little (a model, a network) and pay once per hop."""

    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Hop:
        await ctx.store.set("paid", 0)
        return Hop(i=0)

    @step
    async def hop(self, ctx: Context, ev: Hop) -> Hop | StopEvent:
        await asyncio.sleep(0.02)
        await ctx.once("pay", lambda: ev.i)
        await ctx.store.set("paid", await ctx.store.get("paid") + 1)
        if ev.i + 1 == 60:
            return StopEvent(result=await ctx.store.get("paid"))
        return Hop(i=ev.i + 1)


async def worst_lag(run: Any, freeze: Callable[[], Any], thaw: Callable[[], None]) -> float:
    """Run ``run`` (a handler), freezing the store once it is a few steps in, thawing it
    ``FROZEN`` seconds later; the loop's worst lateness meanwhile, in seconds."""
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            worst = max(worst, time.perf_counter() - before - TICK)

    async def freezer() -> None:
        await asyncio.sleep(0.3)
        undo = freeze()
        try:
            await asyncio.sleep(FROZEN)
        finally:
            thaw() if undo is None else undo()

    tick = asyncio.create_task(ticker())
    frost = asyncio.create_task(freezer())
    try:
        with contextlib.suppress(SnapshotError):  # a store whose timeout is shorter fails it
            await run
        await frost
    finally:
        done.set()
        await tick
    return worst


def cluster_pids(data: Path) -> list[int]:
    """The postmaster of a PostgreSQL cluster and every process it started."""
    master = int((data / "postmaster.pid").read_text().split()[0])
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(entry))
    return pids


@contextlib.contextmanager
def signalled(pids: list[int]) -> Iterator[None]:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
async def test_a_frozen_store_never_blocks_the_event_loop(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = store_location(kind, request, tmp_path)
    with make_store(kind, location) as store:
        freeze: Callable[[], Any]
        stack = contextlib.ExitStack()
        if kind == "sqlite":

            def freeze() -> None:
                lock = sqlite3.connect(location, isolation_level=None)
                lock.execute("BEGIN EXCLUSIVE")  # another process's long write transaction
                stack.callback(lock.close)
                stack.callback(lock.execute, "ROLLBACK")

        elif kind == "redis":
            server = request.getfixturevalue("redis_server")
            server_freeze, server_thaw = server.pause, server.resume

            def freeze() -> None:
                server_freeze()
                stack.callback(server_thaw)

        else:
            cluster = request.getfixturevalue("postgres_cluster")

            def freeze() -> None:
                stack.enter_context(signalled(cluster_pids(cluster.data)))

        handler = Slowly().run(checkpoint=store, run_id=f"frozen-{kind}")
        lag = await worst_lag(handler, freeze, stack.close)
        # a store call on the loop would block it for seconds (the store's timeout, or the
        # freeze); a loaded CI machine alone can make a 10 ms sleep wake 150 ms late.
        # bench/bench_frozen.py measures the lag itself (a few ms on a quiet machine)
        assert lag < 0.5, f"the loop was blocked {lag:.3f} s with {kind} frozen {FROZEN} s"
        assert handler.done()


KERNEL_CELL = """
import asyncio
from notebook_workflows import Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import SQLiteStore

class Beat(Event):
    n: int

class Beating(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Beat:
        return Beat(n=0)

    @step
    async def beat(self, ev: Beat) -> Beat | StopEvent:
        with open({log!r}, "a") as f:
            f.write(f"{{ev.n}}\\n")
        await asyncio.sleep(0.02)
        return StopEvent(result=ev.n) if ev.n >= 2000 else Beat(n=ev.n + 1)

beating = Beating().run(checkpoint=SQLiteStore({db!r}), run_id="beating")
"""


@pytest.mark.kernel
def test_a_kernel_interrupt_stops_a_cell_whose_store_is_locked(tmp_path: Path) -> None:
    """Another process holds the SQLite file's write lock (the store's timeout is 30 s): an
    interrupt still ends the cell at once, since the run's writes wait off the loop."""
    from helpers import wait_until
    from kernel_helpers import Kernel

    log, db = tmp_path / "beats.txt", tmp_path / "runs.db"
    kernel = Kernel(tmp_path)
    try:
        kernel.check(KERNEL_CELL.format(log=str(log), db=str(db)))
        msg_id = kernel.submit("await beating")
        wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 5, what="beats")
        lock = sqlite3.connect(db, isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")  # the run's next checkpoint waits for this lock
        try:
            time.sleep(0.3)  # fifteen beats' worth: the run's next record waits for the lock
            started = time.monotonic()
            kernel.interrupt()
            result = kernel.collect(msg_id, timeout=25)
            stopped_in = time.monotonic() - started
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert result.error is not None  # the cell was interrupted ...
        assert stopped_in < 5, stopped_in  # ... at once, not after the store's 30 s timeout
    finally:
        kernel.shutdown()
