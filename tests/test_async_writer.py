"""The writer of durability="async": the event loop, not the thread, says when records are due.

A busy run keeps records coming, so the thread must not wake (each wake-up makes the run wait
for the thread to be scheduled); a run that waits has its records written by the thread once
they lingered; a writer started on a loop takes records put from other threads too.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from durability_flows import Chain, total
from helpers import until

from notebook_workflows.checkpoint import MemoryStore, Record
from notebook_workflows.checkpoint.writer import LINGER, Writer


class Keeping(MemoryStore):
    """Remembers which thread saved each record."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[int, str] = {}

    def _append(self, record: Record, new_run: Any) -> None:
        self.threads[record.seq] = threading.current_thread().name

    def _append_many(self, records: Any) -> None:
        for record in records:
            self.threads[record.seq] = threading.current_thread().name


def record(seq: int) -> Record:
    return Record("w", seq, "delta", "step", "s", "running", seq, 0.0, "{}")


def new_writer(store: MemoryStore) -> Writer:
    return Writer(store, "w", failed=lambda r, e, s, *more: e, report=print).start()


class CountingWaits(threading.Condition):
    """A condition that counts how often the writer's thread came back from a wait."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.thread_wakes = 0

    def wait(self, timeout: float | None = None) -> bool:
        woken = super().wait(timeout)
        if threading.current_thread().name.startswith("checkpoint-writer"):
            self.thread_wakes += 1
        return woken


async def test_records_wait_for_the_loop_to_find_them_due_not_for_the_thread() -> None:
    store = Keeping()
    writer = new_writer(store)
    try:
        writer.put(record(1))
        time.sleep(20 * LINGER)  # the loop is busy: the record lingers, however long
        assert store.threads == {} and writer.waiting == 1
        # the loop waits: its timer finds the record due
        await until(lambda: not writer.waiting, what="the record written")
        assert store.threads == {1: "checkpoint-writer w"}  # and the thread wrote it
    finally:
        writer.close()
    assert writer.written == 1 and writer.by_thread == 1


async def test_a_record_put_from_another_thread_is_written_once_due() -> None:
    store = Keeping()
    writer = new_writer(store)
    try:
        putter = threading.Thread(target=writer.put, args=(record(1),))
        putter.start()
        putter.join(5)
        await until(lambda: not writer.waiting, what="the record written")
        assert store.threads == {1: "checkpoint-writer w"}
    finally:
        writer.close()


async def test_a_busy_run_wakes_the_writer_thread_once_per_batch(monkeypatch: Any) -> None:
    import notebook_workflows.checkpoint.writer as writer_module

    conditions: list[CountingWaits] = []
    made = writer_module.Writer.__init__

    def counting(self: Writer, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self._cond = CountingWaits(self._cond._lock)  # the same lock, its waits counted
        conditions.append(self._cond)

    monkeypatch.setattr(writer_module.Writer, "__init__", counting)
    store = Keeping()
    result = await Chain().run(checkpoint=store, durability="async", n=400, log=os.devnull)
    assert result == total(400)
    [waits] = conditions
    # the records of quick steps keep coming: the thread is woken once per full batch (25
    # here), never per record, and writes every record but the first, off the loop
    batches = max(store.threads)
    assert waits.thread_wakes <= batches + 6, waits.thread_wakes
    loop_thread = threading.current_thread().name
    assert [seq for seq, name in store.threads.items() if name == loop_thread] == []
