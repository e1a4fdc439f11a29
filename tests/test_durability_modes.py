"""run(..., durability=...): when a checkpointed run's records reach the store.

"sync" writes after every step on the loop, "async" from one background thread in order and in
batches, "exit" only at pauses, ctx.once records and the end. Every mode leaves a history that
resumes; ctx.once records and pauses are in the store before the run goes on, in every mode.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import sqlite3
import threading
import time
from collections import Counter as Tally
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ckpt_flows import Approve, Docs
from durability_flows import Chain, total
from helpers import until

from notebook_workflows import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    SnapshotError,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from notebook_workflows.checkpoint import BaseStore, MemoryStore, Record, Recorder, SQLiteStore
from notebook_workflows.checkpoint.recorder import BUSY_BATCH
from notebook_workflows.checkpoint.writer import MAX_WAITING, Writer

MODES = ["sync", "async", "exit"]


def ran_twice(log: Path) -> list[int]:
    return sorted(int(i) for i, times in Tally(log.read_text().split()).items() if times > 1)


def check_chain(store: BaseStore, run_id: str) -> None:
    """The history is one unbroken chain from a base, and every snapshot in it loads."""
    history = store.history(run_id)
    assert [s.seq for s in history] == list(range(len(history)))
    assert history[0].kind == "base"
    for snapshot in history:
        assert snapshot.context["run_id"] == run_id


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("checkpoint-writer")]


# -- every mode -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_failed_run_resumes_to_the_right_result_in_every_mode(
    mode: str, tmp_path: Path
) -> None:
    store, log = SQLiteStore(tmp_path / "runs.db"), tmp_path / "log"
    broken = Chain()
    broken.fail_at = 60
    handler = broken.run(checkpoint=store, durability=mode, n=100, log=str(log), run_id="r")
    with pytest.raises(RuntimeError, match="hop 60 broke"):
        await handler
    latest = store.latest("r")
    assert (latest.reason, latest.status) == ("end", "failed")
    assert await Chain().resume("r", store=store) == total(100)
    assert ran_twice(log) == [60]  # only the failing step runs again
    check_chain(store, "r")
    assert store.latest("r").status == "done"
    assert writer_threads() == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_once_result_is_in_the_store_before_the_step_goes_on(mode: str) -> None:
    store = MemoryStore()
    workflow = Chain()
    workflow.charge_at, workflow.watch = 3, store
    handler = workflow.run(checkpoint=store, durability=mode, n=5, log=os.devnull, run_id="p")
    assert await handler == total(5)
    seen = workflow.seen
    assert seen.reason == "journal"
    [hop] = [inv for inv in seen.context["in_flight"] if inv["step"] == "hop"]
    assert hop["event"]["data"]["i"] == 3 and "charge" in hop["journal"]
    assert seen.context["store"]["total"] == total(3)  # the steps before it are in it too


@pytest.mark.parametrize("mode", MODES)
async def test_a_pause_for_a_human_is_in_the_store_and_resumes_in_every_mode(mode: str) -> None:
    Approve.prepared = Approve.asked = 0
    store = MemoryStore()
    handler = Approve().run(checkpoint=store, durability=mode, draft="v1")
    # the pause's record is written off the loop: it follows the status within moments
    await until(
        lambda: handler.status == "waiting" and store.run_info(handler.run_id).status == "waiting",
        what="the pause, in the run and in the store",
    )
    paused = store.latest(handler.run_id)
    assert (paused.reason, paused.status) == ("status", "waiting")
    assert store.run_info(handler.run_id).status == "waiting"
    handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert await handler == "v1: yes"
    check_chain(store, handler.run_id)
    fork = Approve().resume(handler.run_id, store=store, at=paused.seq)  # asks again
    async for event in fork.stream_events(lifecycle=False):
        if isinstance(event, InputRequiredEvent):
            assert event.prefix == "publish v1?"
            fork.ctx.send_event(HumanResponseEvent(response="again"))
        if isinstance(event, StopEvent):
            break
    assert await fork == "v1: again"
    assert Approve.prepared == 1


def _run_and_die(db: str, log: str, ledger: str, mode: str, n: int, crash_at: int) -> None:
    async def main() -> None:
        workflow = Chain()
        workflow.crash_at = crash_at
        workflow.charge_at = crash_at if ledger else None
        await workflow.run(
            checkpoint=SQLiteStore(db),
            durability=mode,
            run_id="crash",
            n=n,
            log=log,
            ledger=ledger or os.devnull,
        )

    asyncio.run(main())


async def crash(tmp_path: Path, mode: str, n: int, crash_at: int, ledger: str = "") -> None:
    process = multiprocessing.get_context("spawn").Process(
        target=_run_and_die,
        args=(str(tmp_path / "runs.db"), str(tmp_path / "log"), ledger, mode, n, crash_at),
    )
    process.start()
    await asyncio.to_thread(process.join, 60)
    assert process.exitcode == 7


def intact(db: Path) -> bool:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


@pytest.mark.parametrize("mode", MODES)
async def test_a_run_killed_after_a_charge_charges_once_in_every_mode(
    mode: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    await crash(tmp_path, mode, n=40, crash_at=30, ledger=str(ledger))
    assert ledger.read_text() == "30\n"
    store = SQLiteStore(tmp_path / "runs.db")
    assert store.latest("crash").reason == "journal"
    assert await Chain().resume("crash", store=store) == total(40)
    assert ledger.read_text() == "30\n"  # exactly one charge
    assert ran_twice(tmp_path / "log") == [30]  # the journal record saved the steps before it


# -- "async" --------------------------------------------------------------------------------------


async def test_async_resumes_after_a_crash_rerunning_at_most_a_few_steps(tmp_path: Path) -> None:
    await crash(tmp_path, "async", n=300, crash_at=200)
    assert intact(tmp_path / "runs.db")
    store = SQLiteStore(tmp_path / "runs.db")
    check_chain(store, "crash")
    assert await Chain().resume("crash", store=store) == total(300)
    again = ran_twice(tmp_path / "log")
    # the killed step, and at most the records not yet written (queued or being written)
    assert 200 in again and len(again) <= 2 * BUSY_BATCH
    assert again == list(range(again[0], 201))


class Watched(MemoryStore):
    """Remembers which thread saved each record and the size of each ``save_many`` batch;
    fails once at ``fail_at`` (a batch holding it writes nothing, as every store's batch);
    ``slow`` seconds of commit per batch."""

    def __init__(self, *, fail_at: int | None = None, slow: float = 0.0) -> None:
        super().__init__()
        self.threads: dict[int, str] = {}
        self.fail_at = fail_at
        self.slow = slow
        self.batches: list[tuple[int, str]] = []  # (records, thread)

    def _append(self, record: Record, new_run: Any) -> None:
        self._check([record])
        super()._append(record, new_run)

    def _append_many(self, records: Sequence[Record]) -> None:
        time.sleep(self.slow)
        self._check(records)
        self.batches.append((len(records), threading.current_thread().name))
        super()._append_many(records)

    def _check(self, records: Sequence[Record]) -> None:
        if any(record.seq == self.fail_at for record in records):
            self.fail_at = None  # once: any later record could be saved, and must not be
            raise OSError(28, "No space left on device")
        for record in records:
            self.threads[record.seq] = threading.current_thread().name


async def test_async_writes_step_records_in_its_thread_while_steps_wait() -> None:
    store = Watched()
    workflow = Chain()
    workflow.pause = 0.01  # each step waits (a model, a network) longer than records linger
    result = await workflow.run(checkpoint=store, durability="async", n=30, log=os.devnull)
    assert result == total(30)
    [info] = store.runs()
    check_chain(store, info.run_id)
    history = store.history(info.run_id)
    loop_thread = threading.current_thread().name
    # each step that the run waited after has a record of its own, written by the thread;
    # the last step's changes went with the end record (a promise: written at once)
    steps = [s for s in history if s.reason == "step"]
    assert [s.steps for s in steps] == list(range(1, 31))
    assert {store.threads[s.seq] for s in steps} == {f"checkpoint-writer {info.run_id}"}
    assert [history[-1].reason, history[-1].steps] == ["end", 31]
    # every record is written off the loop: the first before any step starts, the rest by
    # the run's writer thread
    assert loop_thread not in store.threads.values()
    assert store.threads[info.seq] == f"checkpoint-writer {info.run_id}"
    assert writer_threads() == []  # joined when the run ended


async def test_sync_writes_a_record_per_step_off_the_loop() -> None:
    store = Watched()
    await Chain().run(checkpoint=store, n=20, log=os.devnull)
    [info] = store.runs()
    writer = f"checkpoint-writer {info.run_id}"
    assert store.threads[0] != threading.current_thread().name  # off the loop, before any step
    assert {store.threads[seq] for seq in range(1, info.seq + 1)} == {writer}
    history = store.history(info.run_id)
    assert [s.steps for s in history if s.reason == "step"] == list(range(1, 22))
    # a record waits only for the one before it: never more than two in one commit
    assert all(size <= 2 for size, _ in store.batches), store.batches


async def test_async_quick_steps_share_a_record_and_a_step_that_waits_has_its_own() -> None:
    store = Watched()
    workflow = Chain()
    workflow.pause, workflow.pause_every = 0.02, 5  # hops 0, 5, 10, ... wait; the rest do not
    assert await workflow.run(checkpoint=store, durability="async", n=40, log=os.devnull) == (
        total(40)
    )
    [info] = store.runs()
    check_chain(store, info.run_id)
    covered = [s.steps for s in store.history(info.run_id)[1:]]
    gaps = [b - a for a, b in zip([0, *covered], covered, strict=False)]
    assert all(1 <= gap <= 5 for gap in gaps), gaps  # never past a step the run waited in
    assert max(gaps) > 1  # the quick ones shared
    assert covered[-1] == 41


class Tick(Event):
    i: int


class Lagging(Workflow):
    """Ticks that note, as each starts, how many completed steps the store lacks; every
    third one waits a little, so the steps before it go to the writer's thread."""

    store: BaseStore
    lags: list[int]

    @step
    async def go(self, ctx: Context, ev: StartEvent) -> Tick:
        return Tick(i=0)

    @step
    async def tick(self, ctx: Context, ev: Tick) -> Tick | StopEvent:
        self.lags.append(1 + ev.i - self.store.run_info(ctx.run_id).steps)
        if ev.i % 3 == 0:
            await asyncio.sleep(0.004)
        return Tick(i=ev.i + 1) if ev.i < 120 else StopEvent(result=ev.i)


async def test_async_never_leaves_two_batches_of_steps_unwritten_though_the_store_is_slow() -> None:
    class Slow(Watched):
        def _append(self, record: Record, new_run: Any) -> None:
            time.sleep(0.03)  # the thread's commits lag far behind the steps
            super()._append(record, new_run)

    workflow = Lagging()
    workflow.store, workflow.lags = Slow(), []
    assert await workflow.run(checkpoint=workflow.store, durability="async") == 120
    assert max(workflow.lags) < 2 * BUSY_BATCH  # what a crash could lose, at any moment
    assert max(workflow.lags) > 3  # the store did lag: the bound was what held it


async def test_async_a_busy_run_writes_a_record_every_busy_batch_of_steps_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quick steps share a record, BUSY_BATCH of them, written by the writer's thread while
    the next steps run (never on the loop); never more than two records in one commit, so
    fewer than 2 * BUSY_BATCH steps are ever unwritten."""
    import notebook_workflows.checkpoint.recorder as recorder_module

    monkeypatch.setattr(recorder_module, "LINGER", 60.0)  # no step is ever followed by a wait
    commits: list[tuple[int, str]] = []

    class Counting(SQLiteStore):
        def _append(self, record: Record, new_run: Any) -> None:
            commits.append((1, threading.current_thread().name))
            super()._append(record, new_run)

        def _append_many(self, records: Sequence[Record]) -> None:
            commits.append((len(records), threading.current_thread().name))
            super()._append_many(records)

    store = Counting(tmp_path / "runs.db")
    result = await Chain().run(checkpoint=store, durability="async", n=200, log=os.devnull)
    assert result == total(200)
    [info] = store.runs()
    check_chain(store, info.run_id)
    history = store.history(info.run_id)
    assert [s.steps for s in history if s.reason == "step"] == list(
        range(BUSY_BATCH, 201, BUSY_BATCH)
    )
    assert [history[-1].reason, history[-1].steps] == ["end", 201]
    writer = f"checkpoint-writer {info.run_id}"
    assert commits[0][1] != threading.current_thread().name  # the first record: off the loop
    assert {thread for _, thread in commits[1:]} == {writer}
    assert all(size <= 2 for size, _ in commits) and sum(size for size, _ in commits) == len(
        history
    )


async def test_async_a_failed_write_fails_the_run_and_keeps_what_was_saved(
    tmp_path: Path,
) -> None:
    store, log = Watched(fail_at=8), tmp_path / "log"
    # long enough that the failure stops the run before it ends (see the recorder's docstring)
    handler = Chain().run(checkpoint=store, durability="async", n=300, log=str(log), run_id="d")
    with pytest.raises(SnapshotError) as caught:
        await handler
    message = str(caught.value)
    kept = store.latest("d").seq
    # snapshot 8 alone, or with the ones after it if the writer took them in one batch (a
    # loaded machine lets records pile up while the thread waits for a core)
    assert re.search(
        r"run 'd' stopped: the (checkpoint after step 'hop' \(snapshot 8\)"
        r"|checkpoints of snapshots 8 to \d+ \(from the one after step 'hop')",
        message,
    ), message
    assert repr(store) in message and "resume('d')" in message
    assert kept == 7 and "last good checkpoint is snapshot 7" in message
    assert "No space left" in message
    assert handler.status == "failed"
    assert store.run_info("d").seq == kept  # nothing after the lost batch, though it could be
    assert writer_threads() == []
    assert await Chain().resume("d", store=store) == total(300)
    check_chain(store, "d")


async def test_async_a_write_failing_in_the_thread_fails_the_run_while_its_step_waits() -> None:
    store = Watched(fail_at=6)
    workflow = Chain()
    workflow.pause = 0.05  # steps wait: the thread writes each record, and fails at snapshot 6
    handler = workflow.run(checkpoint=store, durability="async", n=50, log=os.devnull, run_id="t")
    with pytest.raises(SnapshotError) as caught:
        await handler
    assert handler.steps_done < 10  # stopped at once, not at the end 50 steps on
    assert "run 't' stopped: the checkpoint after step 'hop' (snapshot 6)" in str(caught.value)
    assert "last good checkpoint is snapshot 5" in str(caught.value)
    assert handler.status == "failed" and store.run_info("t").seq == 5
    assert store.threads[5] == "checkpoint-writer t"
    assert writer_threads() == []


@pytest.mark.parametrize("mode", ["async", "exit"])
async def test_every_store_keeps_a_whole_history(mode: str, any_store: BaseStore) -> None:
    run = f"docs-{mode}"
    result = await Docs().run(
        checkpoint=any_store, durability=mode, run_id=run, ids=list(range(12)), log=os.devnull
    )
    assert result == list(range(12))
    check_chain(any_store, run)
    latest = any_store.latest(run)
    assert (latest.reason, latest.status) == ("end", "done")
    assert await Docs().resume(run, store=any_store) == list(range(12))


# -- "exit" ---------------------------------------------------------------------------------------


async def test_exit_writes_two_records_for_a_500_step_run() -> None:
    store = MemoryStore()
    result = await Chain().run(
        checkpoint=store, durability="exit", n=500, log=os.devnull, run_id="e"
    )
    assert result == total(500)
    history = store.history("e")
    assert [(s.seq, s.kind, s.reason) for s in history] == [
        (0, "base", "start"),
        (1, "delta", "end"),
    ]
    assert history[1].steps == 501 and history[1].status == "done"
    # the same final snapshot as a run that wrote after every step
    await Chain().run(checkpoint=store, n=500, log=os.devnull, run_id="s")
    synced = store.latest("s").context
    for part in ("store", "queue", "in_flight", "status", "steps_done", "stop"):
        assert store.latest("e").context[part] == synced[part]
    assert await Chain().resume("e", store=store) == total(500)


async def test_exit_a_crash_goes_back_to_the_last_record(tmp_path: Path) -> None:
    await crash(tmp_path, "exit", n=100, crash_at=80)
    store = SQLiteStore(tmp_path / "runs.db")
    assert [s.reason for s in store.history("crash")] == ["start"]
    assert await Chain().resume("crash", store=store) == total(100)
    assert ran_twice(tmp_path / "log") == list(range(81))  # all of it, from the start


# -- the parts --------------------------------------------------------------------------------


def test_an_unknown_durability_is_refused() -> None:
    with pytest.raises(ValueError, match="'sync', 'async', 'exit', not 'never'"):
        Recorder(MemoryStore(), durability="never")


def test_a_full_queue_is_written_at_once_and_the_run_waits_for_it() -> None:
    gate = threading.Event()

    class Slow(MemoryStore):
        def _append(self, record: Record, new_run: Any) -> None:
            gate.wait(10)

        def _append_many(self, records: Sequence[Record]) -> None:
            gate.wait(10)

    store = Slow()
    errors: list[BaseException] = []
    writer = Writer(store, "w", failed=lambda r, e, s, *more: e, report=errors.append).start()
    records = [Record("w", i, "delta", "step", "s", "running", i, 0.0, "{}") for i in range(40)]

    try:
        for record in records[:MAX_WAITING]:
            writer.put(record)  # never writes, never blocks: the thread takes the full queue
        full = writer.wait_for(MAX_WAITING - 1)  # what the run awaits before it goes on
        assert not full.done()  # the store has not answered yet
        gate.set()
        full.result(10)
        assert writer.written == MAX_WAITING - 1
        for record in records[MAX_WAITING:]:
            writer.put(record)
        writer.wait_for(39).result(10)
    finally:
        gate.set()
        writer.close()
    assert writer.written == 39 and errors == []


async def test_async_a_lost_end_record_fails_the_run_and_the_history_stays_whole() -> None:
    store = Watched(fail_at=1)  # 0 start, 1 the end with the six quick steps before it
    handler = Chain().run(checkpoint=store, durability="async", n=5, log=os.devnull, run_id="late")
    with pytest.raises(SnapshotError) as caught:
        await handler  # its store would not say it is done: it failed
    assert "the checkpoint of its end (done) (snapshot 1) could not be saved" in str(caught.value)
    assert "resume('late')" in str(caught.value)
    assert handler.status == "failed"
    assert store.run_info("late").seq == 0
    assert writer_threads() == []
    assert await Chain().resume("late", store=store) == total(5)
    check_chain(store, "late")


def test_the_writer_stops_by_itself_when_its_loop_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import notebook_workflows.checkpoint.writer as writer_module

    monkeypatch.setattr(writer_module, "_IDLE_CHECK", 0.01)
    written: list[int] = []

    class Keeping(MemoryStore):
        def _append(self, record: Record, new_run: Any) -> None:
            written.append(record.seq)

    async def start() -> Writer:
        writer = Writer(Keeping(), "w", failed=lambda r, e, s, *more: e, report=print).start()
        writer.put(Record("w", 1, "delta", "step", "s", "running", 1, 0.0, "{}"))
        return writer

    loop = asyncio.new_event_loop()
    writer = loop.run_until_complete(start())
    loop.close()  # the run's loop is gone without the run ending
    thread = writer._thread
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive() and written == [1]
