"""The background writer of ``durability="async"``: one thread per run writes the recorder's
records to the store, in order, in batches, while the event loop goes on with the next step.

Design decisions:

* The loop encodes, the thread only writes. A record's delta is taken on the event loop when
  its step completes (taking it drains the run's change tracking, so it cannot wait), and what
  crosses to the thread is a finished ``Record`` of JSON text: the thread never reads the run's
  state, so the queue is the only thing the two share.
* One thread, one queue, in order. Deltas only replay in sequence, so records are written in
  the order they were numbered, and after a failed write nothing more is written for the run:
  the records already in the store stay a whole prefix of the history, and a lost tail only
  means that ``resume`` runs those steps again (at-least-once).
* Batches: the thread takes every record waiting at once. A store with a
  ``save_many(records)`` method writes them in one transaction (all or nothing); any other
  store gets one ``save`` per record, still off the loop.
* Bounded: at most ``MAX_WAITING`` records (and ``MAX_WAITING_CHARS`` of JSON) wait. A run
  that outpaces its store waits for it in ``put`` instead of growing memory, and what a crash
  can lose, without bound.
* The recorder joins the thread when the run ends (``close``). The thread is a daemon only as
  a last resort, and it also stops by itself, after writing what waits, once the event loop it
  was started from is closed (a loop torn down while a run was still going).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .base import Record, SnapshotStore

__all__ = ["MAX_WAITING", "MAX_WAITING_CHARS", "Writer"]

MAX_WAITING = 16  # records queued before the run waits for the store
MAX_WAITING_CHARS = 4 * 1024 * 1024  # JSON text queued before the run waits (big bases)
_IDLE_CHECK = 1.0  # seconds between checks that the run's loop still exists


class Writer:
    """Writes one run's records in a thread of its own.

    ``failed(record, exc, last_good)`` turns a store's exception into the error the run fails
    with (``last_good``: the seq of the last record written, -1 if none); ``report(error)`` is
    called once with it, from the writer's thread. After a failure ``error`` is set, records
    put later are dropped, and ``flush`` returns at once.
    """

    def __init__(
        self,
        store: SnapshotStore,
        run_id: str,
        *,
        failed: Callable[[Record, Exception, int], BaseException],
        report: Callable[[BaseException], None],
        written: int = -1,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.written = written  # seq of the last record the store has
        self.error: BaseException | None = None
        self.batches = 0  # how many times the thread took the records waiting
        self._failed = failed
        self._report = report
        self._cond = threading.Condition()
        self._queue: list[Record] = []
        self._chars = 0  # JSON text waiting
        self._busy = False  # the thread holds a batch it is writing
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Writer(run {self.run_id!r}, {len(self._queue)} waiting, written {self.written})"

    def start(self) -> Writer:
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._work, name=f"checkpoint-writer {self.run_id}", daemon=True
        )
        self._thread.start()
        return self

    # -- what the event loop calls --------------------------------------------------------------

    def put(self, record: Record) -> None:
        """Queue ``record`` (numbered after every record queued before it); waits while the
        queue is full. Dropped if a write failed already."""
        size = len(record.data)
        with self._cond:
            while self.error is None and (
                len(self._queue) >= MAX_WAITING
                or (self._queue and self._chars + size > MAX_WAITING_CHARS)
            ):
                self._cond.wait()
            if self.error is not None:
                return
            self._queue.append(record)
            self._chars += size
            if len(self._queue) == 1:
                self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every record queued so far is in the store (or a write failed: see
        ``error``)."""
        with self._cond:
            while self.error is None and (self._queue or self._busy):
                self._cond.wait()

    def close(self) -> None:
        """Write what waits, then stop the thread and wait for it. Calling it twice is
        harmless."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    # -- the thread -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    if not self._cond.wait(_IDLE_CHECK) and self._loop_gone():
                        self._closing = True
                if not self._queue:
                    return  # closing, and everything is written
                batch, self._queue, self._chars = self._queue, [], 0
                self._busy = True
                self._cond.notify_all()  # room in the queue again
            error = self._write(batch)
            with self._cond:
                self._busy = False
                if error is not None:
                    self.error = error
                    self._queue, self._chars = [], 0
                self._cond.notify_all()
            if error is not None:
                self._report(error)
                return

    def _write(self, batch: Sequence[Record]) -> BaseException | None:
        save_many: Any = getattr(self.store, "save_many", None)
        self.batches += 1
        if save_many is not None and len(batch) > 1:
            try:
                save_many(batch)
            except Exception as exc:
                return self._failed(batch[0], exc, self.written)
            self.written = batch[-1].seq
            return None
        for record in batch:
            try:
                self.store.save(record)
            except Exception as exc:
                return self._failed(record, exc, self.written)
            self.written = record.seq
        return None

    def _loop_gone(self) -> bool:
        loop = self._loop
        return loop is not None and loop.is_closed()
