"""A store that fails at random writes (restarted, locked, full) never makes an outside effect
happen twice: ``ctx.once`` calls are made only once every checkpoint before them is in the
store, return only once their own record is, and a run whose checkpoint failed starts no
other step. Resuming after each failure, in the same process, finishes every run with each
charge made once, on every store and in every durability mode."""

from __future__ import annotations

import collections
import random
from typing import Any

import pytest
from servers import make_store

from notebook_workflows import Context, Event, StartEvent, StopEvent, Workflow, step
from notebook_workflows.checkpoint import BaseStore, MemoryStore, Record
from notebook_workflows.errors import SnapshotError

HOPS = 6
CHARGES: collections.Counter[str] = collections.Counter()


def charge(run_id: str, hop: int) -> str:
    """The outside effect: every call is one more charge."""
    CHARGES[f"{run_id}/{hop}"] += 1
    return f"receipt {hop}"


class Hop(Event):
    i: int


class Shop(Workflow):
    @step
    async def begin(self, ctx: Context, ev: StartEvent) -> Hop:
        await ctx.store.set("receipts", [])
        return Hop(i=0)

    @step
    async def hop(self, ctx: Context, ev: Hop) -> Hop | StopEvent:
        receipt = await ctx.once("charge", charge, ctx.run_id, ev.i)
        async with ctx.store.edit_state() as state:
            state["receipts"] = [*state["receipts"], receipt]
        if ev.i + 1 == HOPS:
            return StopEvent(result=await ctx.store.get("receipts"))
        return Hop(i=ev.i + 1)


class Flaky:
    """Makes ``store``'s record writes fail at random (seeded): before the write (nothing
    saved: a store restarted or locked) or after it (saved, but the answer lost)."""

    def __init__(self, store: BaseStore, seed: int, rate: float) -> None:
        self.random = random.Random(seed)
        self.rate = rate
        self.faults = 0
        append, append_many = store._append, store._append_many

        def _append(record: Record, new_run: Any) -> None:
            self._write(lambda: append(record, new_run))

        def _append_many(records: Any) -> None:
            self._write(lambda: append_many(records))

        store._append = _append  # type: ignore[method-assign]
        store._append_many = _append_many  # type: ignore[method-assign]
        self.store = store

    def __enter__(self) -> Flaky:
        return self

    def __exit__(self, *exc: object) -> None:
        del self.store._append, self.store._append_many  # the class's own again

    def _write(self, write: Any) -> None:
        roll = self.random.random()
        if roll < self.rate / 2:
            self.faults += 1
            raise OSError("injected: the store went away before the write")
        write()
        if roll < self.rate:
            self.faults += 1
            raise OSError("injected: the store went away after the write")


async def finish(store: BaseStore, run_id: str, durability: str) -> tuple[Any, int]:
    """Run, then resume after each failure, until the run is done; its result and the number
    of failures on the way."""
    failures = 0
    for _ in range(200):
        try:
            if store.run_info(run_id) is None:
                return await Shop().run(
                    checkpoint=store, run_id=run_id, durability=durability
                ), failures
            return await Shop().resume(run_id, store=store, durability=durability), failures
        except SnapshotError:
            failures += 1
    raise AssertionError(f"run {run_id!r} did not finish in 200 tries")


async def faults_never_charge_twice(store: BaseStore, label: str, seeds: range) -> None:
    failures = 0
    for durability in ("sync", "async", "exit"):
        for seed in seeds:
            run_id = f"{label}-{durability}-{seed}"
            with Flaky(store, seed, rate=0.3) as flaky:
                result, failed = await finish(store, run_id, durability)
            failures += failed
            assert result == [f"receipt {i}" for i in range(HOPS)], run_id
            charges = {hop: CHARGES[f"{run_id}/{hop}"] for hop in range(HOPS)}
            assert charges == dict.fromkeys(range(HOPS), 1), (run_id, flaky.faults, charges)
    assert failures > 10  # the faults did stop runs, many times


async def test_random_write_faults_never_charge_twice_memory_and_sqlite(tmp_path: Any) -> None:
    await faults_never_charge_twice(MemoryStore(), "memory", range(12))
    with make_store("sqlite", str(tmp_path / "runs.db")) as store:
        await faults_never_charge_twice(store, "sqlite", range(12))


@pytest.mark.parametrize("kind", ["redis", "postgres"])
async def test_random_write_faults_never_charge_twice_shared_stores(
    kind: str, request: pytest.FixtureRequest
) -> None:
    from servers import store_location

    location = store_location(kind, request, request.getfixturevalue("tmp_path"))
    with make_store(kind, location) as store:
        await faults_never_charge_twice(store, kind, range(6))


async def test_a_step_never_starts_after_its_runs_checkpoint_failed() -> None:
    """The checkpoint after ``begin`` fails: no hop charges (before, the abort was queued
    behind the command that started the next step, which then charged). A hop that started
    while that record was still being written finds it lost before it makes its call."""
    store = MemoryStore()
    append = store._append

    def fail_second(record: Record, new_run: Any) -> None:
        if record.seq == 1:
            raise OSError("injected: disk full")
        append(record, new_run)

    store._append = fail_second  # type: ignore[method-assign]
    with pytest.raises(SnapshotError, match="disk full"):
        await Shop().run(checkpoint=store, run_id="stopped")
    assert not [key for key in CHARGES if key.startswith("stopped/")]


async def test_once_raises_when_its_record_cannot_be_written_and_resume_does_not_charge() -> None:
    store = MemoryStore()
    append = store._append
    failed: list[int] = []

    def fail_journal(record: Record, new_run: Any) -> None:
        if record.reason == "journal" and not failed:
            failed.append(record.seq)
            raise OSError("injected: the store restarted")
        append(record, new_run)

    store._append = fail_journal  # type: ignore[method-assign]
    with pytest.raises(SnapshotError) as caught:
        await Shop().run(checkpoint=store, run_id="unrecorded")
    message = str(caught.value)
    assert "ctx.once result in step 'hop'" in message and "the store restarted" in message
    assert CHARGES["unrecorded/0"] == 1
    assert await Shop().resume("unrecorded", store=store) == [f"receipt {i}" for i in range(HOPS)]
    assert [CHARGES[f"unrecorded/{i}"] for i in range(HOPS)] == [1] * HOPS
