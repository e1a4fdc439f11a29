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
* Batches: the thread lets records gather for up to ``LINGER`` (2 ms) after the first one
  arrives, unless the queue fills or someone waits for them, then takes every record waiting
  at once. A store with a ``save_many(records)`` method writes them in one transaction (all
  or nothing); any other store gets one ``save`` per record, still off the loop.
* What it buys, measured (``bench/bench_durability.py``): when steps wait (on a model, a
  network, a human) the writes happen meanwhile and cost the run nothing. When steps are
  quick Python, the GIL lets the thread write only while the run waits for it, so with one
  ``save`` per record the run pays what ``"sync"`` pays; one transaction per batch is what
  makes it cheaper there (a prototype ``SQLiteStore.save_many`` took the 500-step chain's
  extra cost per step from about 100 us to about 60 us).
* Bounded: at most ``MAX_WAITING`` records (and ``MAX_WAITING_CHARS`` of JSON) are not yet
  written, counting the batch being written. A run that outpaces its store waits in ``put``
  until that batch is written, instead of growing memory, and what a crash can lose, without
  bound. Waking the run only once its batch is written, not as soon as the thread took it,
  matters under the GIL: a run busy with steps would otherwise take the GIL back at once, and
  the thread would wait for its turn (the interpreter's switch interval, 5 ms) after every
  statement it hands to the store.
* The recorder joins the thread when the run ends (``close``). The thread is a daemon only as
  a last resort, and it also stops by itself, after writing what waits, once the event loop it
  was started from is closed (a loop torn down while a run was still going).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .base import Record, SnapshotStore

__all__ = ["LINGER", "MAX_WAITING", "MAX_WAITING_CHARS", "Writer"]

MAX_WAITING = 16  # records queued before the run waits for the store
MAX_WAITING_CHARS = 4 * 1024 * 1024  # JSON text queued before the run waits (big bases)
LINGER = 0.002  # seconds the thread lets records gather before it writes them
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
        self._chars = 0  # JSON text not yet written
        self._busy = 0  # records in the batch being written
        self._closing = False
        self._hurry = 0  # callers waiting for room or for a flush: no lingering
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
            while self.error is None and self._full(size):
                self._hurry += 1
                self._cond.notify_all()  # the thread may be lingering: write now
                self._cond.wait()
                self._hurry -= 1
            if self.error is not None:
                return
            self._queue.append(record)
            self._chars += size
            if len(self._queue) == 1:
                self._cond.notify_all()  # the thread may be waiting for work

    def flush(self) -> None:
        """Wait until every record queued so far is in the store (or a write failed: see
        ``error``)."""
        with self._cond:
            self._hurry += 1
            self._cond.notify_all()
            while self.error is None and (self._queue or self._busy):
                self._cond.wait()
            self._hurry -= 1

    def close(self) -> None:
        """Write what waits, then stop the thread and wait for it. Calling it twice is
        harmless."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _full(self, size: int) -> bool:
        return len(self._queue) + self._busy >= MAX_WAITING or bool(
            self._chars and self._chars + size > MAX_WAITING_CHARS
        )

    @property
    def waiting(self) -> int:
        """Records not yet in the store (queued, or in the batch being written)."""
        return len(self._queue) + self._busy

    # -- the thread -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    if not self._cond.wait(_IDLE_CHECK) and self._loop_gone():
                        self._closing = True
                if not self._queue:
                    return  # closing, and everything is written
                self._linger()
                batch, self._queue = self._queue, []
                self._busy = len(batch)
            error = self._write(batch)
            with self._cond:
                self._busy = 0
                self._chars -= sum(len(record.data) for record in batch)
                if error is not None:
                    self.error = error
                    self._queue, self._chars = [], 0
                self._cond.notify_all()  # room again, or flushed
            if error is not None:
                self._report(error)
                return

    def _linger(self) -> None:
        """Let more records come before writing (called holding the lock): until the queue
        is full, someone waits for the records (``flush``, ``close``), or ``LINGER``
        seconds passed. A run busy with steps fills a batch and waits for it, instead of
        fighting the thread for the GIL at every statement."""
        deadline = time.monotonic() + LINGER
        while not (self._hurry or self._closing or self._full(0)):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

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
