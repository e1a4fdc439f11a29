"""One run, one owner: a run going on in one process is refused to a second resumer, naming
the owner; a dead owner never blocks; two processes racing to resume one run never both run
its steps."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from ckpt_flows import Docs
from helpers import until, wait_until
from servers import make_store

from notebook_workflows.checkpoint import RunOwnedError, SQLiteStore

IDS = list(range(12))


def _start_and_hang(
    db: str, log: str, run_id: str, kind: str = "sqlite", delay: str = "0.05"
) -> None:
    async def main() -> None:
        handler = Docs().run(
            checkpoint=make_store(kind, db), run_id=run_id, ids=IDS, log=log, delay=float(delay)
        )
        await handler

    asyncio.run(main())


def _resume(db: str, run_id: str, outcome: str) -> None:
    async def main() -> None:
        try:
            result = await Docs().resume(run_id, store=SQLiteStore(db))
        except RunOwnedError as exc:
            Path(outcome).write_text(f"refused {exc}")
            return
        Path(outcome).write_text(f"done {result}")

    asyncio.run(main())


def _spawn(target: object, *args: str) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    return process


def _wait_for_lines(log: Path, n: int) -> None:
    wait_until(
        lambda: log.exists() and len(log.read_text().splitlines()) >= n, what="the run's start"
    )


async def test_a_second_resumer_is_refused_naming_the_owner(
    tmp_path: Path, shared_spec: tuple[str, str]
) -> None:
    kind, db = shared_spec  # SQLite, Redis and PostgreSQL: two processes share the store
    log = tmp_path / "log"
    owner = _spawn(_start_and_hang, db, str(log), "owned", kind, "2")  # goes on for a while
    try:
        _wait_for_lines(log, 2)
        with pytest.raises(RunOwnedError) as caught:  # before any step of it runs here
            await Docs().resume("owned", store=make_store(kind, db))
        message = str(caught.value)
        assert f"process {owner.pid}" in message and "force=True" in message
    finally:
        owner.kill()
        owner.join()


async def test_a_killed_owner_does_not_block_a_resume_on_the_same_host(
    tmp_path: Path, shared_spec: tuple[str, str]
) -> None:
    kind, db = shared_spec  # a run started in one process, killed, resumed in another
    log = tmp_path / "log"
    owner = _spawn(_start_and_hang, db, str(log), "orphan", kind)
    _wait_for_lines(log, 2)
    os.kill(owner.pid, signal.SIGKILL)
    owner.join()
    started = time.monotonic()
    assert await Docs().resume("orphan", store=make_store(kind, db)) == IDS
    # at once, not after the lease's 30 s (generous, for a loaded machine)
    assert time.monotonic() - started < 20


async def test_two_resumers_racing_never_both_run_steps(tmp_path: Path) -> None:
    for trial in range(5):
        db, log = str(tmp_path / f"runs{trial}.db"), tmp_path / f"log{trial}"
        owner = _spawn(_start_and_hang, db, str(log), "raced")
        _wait_for_lines(log, 2)
        os.kill(owner.pid, signal.SIGKILL)
        owner.join()
        outcomes = [str(tmp_path / f"outcome{trial}-{i}") for i in range(2)]
        racers = [_spawn(_resume, db, "raced", outcome) for outcome in outcomes]
        for racer in racers:
            racer.join(60)
        said = sorted(Path(o).read_text().split(" ", 1)[0] for o in outcomes)
        assert said == ["done", "refused"], [Path(o).read_text() for o in outcomes]
        conversions = Counter(int(line.split()[1]) for line in log.read_text().splitlines())
        assert set(conversions) == set(IDS)
        # at-least-once allows a conversion that was running at the kill to run again: once
        assert max(conversions.values()) <= 2
        assert sum(conversions.values()) <= len(IDS) + 2  # at most the 2 workers in flight


async def test_an_owner_whose_run_is_taken_over_with_force_is_told_so_not_of_a_store_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ckpt_flows import Approve

    from notebook_workflows.checkpoint import lease

    monkeypatch.setattr(lease, "DEFAULT_TTL", 0.6)  # the keeper renews every 0.2 s
    db = tmp_path / "runs.db"
    first = Approve().run(checkpoint=SQLiteStore(db), draft="d", run_id="taken")

    def asking() -> bool:
        info = SQLiteStore(db).run_info("taken")
        return info is not None and info.status == "waiting"

    await until(asking, what="the run's question in the store")
    second = Approve().resume("taken", store=SQLiteStore(db), force=True)
    try:
        with pytest.raises(RunOwnedError) as caught:
            await asyncio.wait_for(first, 10)
        message = str(caught.value)
        assert "run 'taken' lost its lease" in message
        assert f"taken over by process {os.getpid()}" in message and "(force=True)" in message
        assert "could not" not in message and "works again" not in message
    finally:
        await second.cancel()


async def test_a_run_whose_event_loop_closed_under_it_does_not_stay_owned_here(
    tmp_path: Path,
) -> None:
    """A loop torn down while its run was still going (a test's, a script's) never ends that
    run, so it never gives its claim back: a later run of the same id in this process is
    not refused as "running it now"."""
    store, log = SQLiteStore(tmp_path / "runs.db"), str(tmp_path / "log")

    def elsewhere() -> None:  # a loop of its own, in a thread, closed under the run
        other = asyncio.new_event_loop()
        try:

            async def start() -> None:
                handler = Docs().run(checkpoint=store, run_id="orphan", ids=IDS, log=log, delay=0.2)
                await until(
                    lambda: handler.view().steps_done and store.runs(),
                    what="the run started and recorded",
                )

            other.run_until_complete(start())
        finally:
            other.close()

    await asyncio.to_thread(elsewhere)
    result = await Docs().resume("orphan", store=store)
    assert sorted(result) == IDS
