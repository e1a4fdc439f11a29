"""The writer of a run's records: every record after the run's first is written to the store
in order, in batches of one commit each, by one thread of the run's own, never on the event
loop (so a store that stops answering holds the run up, not the notebook).

Design decisions:

* How the recorder uses it: it ``put``s each record, numbered, and ``wait_for(seq)`` gives a
  future done once record ``seq`` is in the store, which the run awaits where its mode says
  so ("sync": the record before the newest; promises such as ``ctx.once`` results, pauses and
  the end: the record itself). ``write_soon`` has the thread write what is queued at once;
  without it (``durability="async"`` records of quick steps) the writer's linger, below,
  decides.
* The loop encodes, the writer only writes. A record's delta is taken on the event loop
  (taking it drains the run's change tracking), and what crosses to the thread is a finished
  ``Record`` of JSON text: the thread never reads the run's
  state, so the queue is the only thing the two share. (Encoding in the thread instead would
  not make a run faster: under the GIL the thread's Python work is the loop's lost time, and
  a run that outpaces its store waits for the thread anyway.)
* One queue, in order, one batch written at a time. Deltas only replay in sequence, so
  records are written in the order they were numbered, a batch is taken only when the one
  before it is written, and after a failed write nothing more is written for the run: the
  records already in the store stay a whole prefix of the history, and a lost tail only means
  that ``resume`` runs those steps again (at-least-once).
* A batch is one ``store.save_many(records)``: one transaction (SQLite: one multi-row
  ``INSERT``; Redis: one script; PostgreSQL: one statement), all or nothing. A store without
  ``save_many`` gets one ``save`` per record, in order.
* Who writes: always the thread. Once no record has come for ``LINGER`` (2 ms), the run is
  waiting for something (a model, a network, a human: the case that matters in a notebook)
  and the thread writes what is queued, costing the run nothing. A queue that fills
  (``MAX_WAITING`` records, or ``MAX_WAITING_CHARS`` of JSON) is due at once. Writing a
  busy run's batches on the loop was about 20 us a step cheaper on this shared 2-core
  machine (every hand-over is two thread switches, each a wait for a core and the GIL), but
  a store that does not answer then freezes the loop for its whole timeout.
* The thread sleeps until records are due, and the event loop, not the thread, tells when:
  the first record put into an empty queue sets a loop timer for ``LINGER``; when it fires
  and no record came meanwhile, the run is waiting and the thread is woken to write; when
  records did come, the timer is set again for the rest of the linger. A busy run thus
  never wakes the thread (one timer per ``LINGER`` on the loop instead): a thread that wakes
  while the run's Python holds the GIL makes the run wait for it to be scheduled. Measured on
  this loaded 2-core machine (the 500-step chain of ``bench/bench_durability.py``), a thread
  timing its own linger woke about once per batch and cost about 3 us of CPU and up to 10 us
  of wall time per step; now it wakes once per full batch or idle spell. A batch written is
  announced to the ``wait_for`` futures it settles. A writer started without a running loop
  falls back to the thread timing its own linger (records put from another thread than the
  loop's set the timer through ``call_soon_threadsafe``). Should the loop be stopped or blocked,
  the records wait for it (fewer than ``MAX_WAITING``, as always); should it be closed, the
  thread finds out within ``_IDLE_CHECK`` and writes them.
* Bounded: at most ``MAX_WAITING`` records (and ``MAX_WAITING_CHARS`` of JSON) are not yet
  written, so what a crash can lose is bounded too.
* The recorder joins the thread when the run ends (``close``). The thread is a daemon only as
  a last resort, and it also stops by itself, after writing what waits, once the event loop it
  was started from is closed (a loop torn down while a run was still going).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .base import Record, SnapshotStore

__all__ = ["LINGER", "MAX_WAITING", "MAX_WAITING_CHARS", "Writer"]

MAX_WAITING = 16  # records not yet written before the run writes them itself
MAX_WAITING_CHARS = 4 * 1024 * 1024  # JSON text not yet written before it does (big bases)
LINGER = 0.002  # seconds records may wait for more to share their commit
_IDLE_CHECK = 1.0  # seconds between checks that the run's loop still exists


class Writer:
    """Writes one run's records, in order, in a thread of its own.

    ``failed(first, exc, last_good, last)`` turns a store's exception into the error the run
    fails with (the records ``first`` to ``last`` were not saved; ``last_good``: the seq of the
    last record written, -1 if none); ``report(error)`` is
    called once with it when the thread's write failed. After a failure ``error`` is set,
    records put later are dropped, and ``wait_for`` fails with it at once.
    """

    def __init__(
        self,
        store: SnapshotStore,
        run_id: str,
        *,
        failed: Callable[[Record, Exception, int, Record], BaseException],
        report: Callable[[BaseException], None],
        written: int = -1,
        lingers: bool = True,
    ) -> None:
        self.store = store
        self.lingers = lingers  # records wait for more to share a commit ("async"), or not
        self.run_id = run_id
        self.written = written  # seq of the last record the store has
        self.error: BaseException | None = None
        self.batches = 0  # how many batches were written
        self.by_thread = 0  # ... of them by the thread
        self._failed = failed
        self._report = report
        # held directly where nothing waits (``put``): a Condition's own ``with`` costs more
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._queue: list[Record] = []
        self._last = 0.0  # when the newest record in the queue arrived (time.monotonic)
        self._chars = 0  # JSON text in the queue
        self._busy = 0  # records in the batch being written
        self._awaiting = 0  # callers waiting (in ``_await_write``) for that batch to be written
        self._lingering = False  # the thread waits for the queue's records to age
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None  # the loop's thread, if started on a loop
        # the loop's check that records are due (a Handle while it is being armed: _arm)
        self._timer: asyncio.Handle | None = None
        self._due = False  # the loop found the queued records due: the thread writes them
        self._thread: threading.Thread | None = None
        self._waiters: list[tuple[int, concurrent.futures.Future[None]]] = []  # ``wait_for``

    def __repr__(self) -> str:
        return f"Writer(run {self.run_id!r}, {len(self._queue)} waiting, written {self.written})"

    def start(self) -> Writer:
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
        self._thread = threading.Thread(
            target=self._work, name=f"checkpoint-writer {self.run_id}", daemon=True
        )
        self._thread.start()
        return self

    # -- what the event loop calls --------------------------------------------------------------

    def put(self, record: Record) -> None:
        """Queue ``record`` (numbered after every record queued before it). When the queue is
        full, the thread is told to write it at once. Dropped if a write failed already."""
        with self._lock:
            if self.error is not None:
                return
            queue = self._queue
            self._last = time.monotonic()
            if not queue and self.lingers:
                if self._loop_thread is None:
                    if not self._lingering:
                        self._cond.notify()  # the thread waits for work (it alone waits)
                elif self._timer is None:
                    self._arm(LINGER)
            queue.append(record)
            self._chars += len(record.data)
            if len(queue) + self._busy >= MAX_WAITING or self._chars > MAX_WAITING_CHARS:
                self._due = True  # full: the thread writes it now (the run awaits ``wait_for``)
                self._cond.notify_all()

    def wait_for(self, seq: int) -> concurrent.futures.Future[None]:
        """A future done once record ``seq`` (and every record before it) is in the store,
        or failed with the run's error if a write failed. The run's loop awaits it; no
        store call is made by the caller."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            if self.error is not None:
                future.set_exception(self.error)
            elif self.written >= seq:
                future.set_result(None)
            else:
                self._waiters.append((seq, future))
                if self._queue and not self._due:  # someone waits: what is queued is due
                    self._due = True
                    self._cond.notify_all()
        return future

    def write_soon(self) -> None:
        """Have the thread write what is queued now, not once it has lingered (the run is
        known to wait: see ``recorder``)."""
        with self._lock:
            if self._queue:
                self._due = True
                self._cond.notify_all()

    def close(self) -> None:
        """Write what waits, then stop the thread and wait for it. Calling it twice is
        harmless."""
        with self._cond:
            self._closing = True
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    @property
    def waiting(self) -> int:
        """Records not yet in the store (queued, or in the batch being written)."""
        return len(self._queue) + self._busy

    def _arm(self, delay: float) -> None:
        """Have the loop check, ``delay`` seconds from now, whether the queued records are due
        (called holding the lock). From another thread than the loop's, through the loop."""
        loop = self._loop
        assert loop is not None
        if threading.get_ident() == self._loop_thread:
            self._timer = loop.call_later(delay, self._check_due)
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the thread finds it gone
            self._timer = loop.call_soon_threadsafe(self._arm_later, delay)

    def _arm_later(self, delay: float) -> None:
        with self._lock:
            # (only _arm schedules this, through the loop it has)
            self._timer = self._loop.call_later(delay, self._check_due)  # type: ignore[union-attr]

    def _check_due(self) -> None:
        """On the loop: the queued records are due once none came for ``LINGER`` (the run
        waits for something); then the thread is told to write them. While records keep
        coming the check is put off, never the thread woken."""
        with self._lock:
            self._timer = None
            if not self._queue or self.error is not None or self._closing:
                return
            left = self._last + LINGER - time.monotonic()
            if left > 0:
                self._arm(left)
                return
            self._due = True
            self._cond.notify_all()

    # -- the thread -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                self._wait_until_due()
                if not self._queue:
                    return  # closing, and everything is written
                batch = self._take()
            if not self._write(batch, by_thread=True):
                return

    def _wait_until_due(self) -> None:
        """Wait (holding the lock) until the queued records are due (no record came for
        ``LINGER``: for a writer started on a loop, the loop's timer found so; else the thread
        times its own linger) or the writer is closing, and no batch is being written; with an
        empty queue only when closing. Records arriving do not wake it (see the module
        docstring)."""
        cond = self._cond
        while True:
            if not self._queue:
                if self._closing:
                    return
                if not cond.wait(_IDLE_CHECK) and self._loop_gone():
                    self._closing = True
                continue
            if self._due:
                left = 0.0
            elif self._loop_thread is not None and not self._closing:
                # started on a loop: the loop's timer says when the records are due
                if not self._due:
                    if not cond.wait(_IDLE_CHECK) and self._loop_gone():
                        self._closing = True
                    continue
                left = 0.0
            else:
                left = self._last + LINGER - time.monotonic()
            if self._busy and (left <= 0 or self._closing):
                self._await_write()  # then go round again: records may have come meanwhile
                continue
            if left <= 0 or self._closing:
                return
            self._lingering = True
            cond.wait(left)
            self._lingering = False

    def _await_write(self) -> None:
        """Wait (holding the lock) until the batch being written, if any, is written, or a
        write failed. Only such waits are woken when a batch is written: a thread lingering
        over a queue that the run took meanwhile is left to wake at its own time."""
        while self._busy and self.error is None:
            self._awaiting += 1
            try:
                self._cond.wait()
            finally:
                self._awaiting -= 1

    def _take(self) -> list[Record]:
        """The queued records, now the batch being written (called holding the lock)."""
        batch, self._queue = self._queue, []
        self._busy = len(batch)
        self._due = False
        self._chars = 0
        return batch

    def _write(self, batch: Sequence[Record], by_thread: bool = False) -> bool:
        """Write ``batch``; False (and ``error`` set) if the store failed."""
        error = self._save(batch)
        with self._cond:
            self._busy = 0
            self.batches += 1
            self.by_thread += by_thread
            if error is not None:
                self.error = error
                self._queue, self._chars = [], 0
            if self._awaiting:
                self._cond.notify_all()  # written: the next batch may go
            ready = self._ready()
        for future in ready:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        if error is not None and by_thread:
            self._report(error)
        return error is None

    def _ready(self) -> list[concurrent.futures.Future[None]]:
        """The ``wait_for`` futures that the last write settled (called holding the lock):
        all of them after a failure, else those of records now written."""
        waiters = self._waiters
        if not waiters:
            return []
        if self.error is not None:
            self._waiters = []
            return [future for _, future in waiters]
        written = self.written
        self._waiters = [(seq, future) for seq, future in waiters if seq > written]
        return [future for seq, future in waiters if seq <= written]

    def _save(self, batch: Sequence[Record]) -> BaseException | None:
        save_many: Any = getattr(self.store, "save_many", None)
        if save_many is not None and len(batch) > 1:
            try:
                save_many(batch)
            except Exception as exc:
                return self._failed(batch[0], exc, self.written, batch[-1])  # all or none
            self.written = batch[-1].seq
            return None
        for record in batch:
            try:
                self.store.save(record)
            except Exception as exc:
                return self._failed(record, exc, self.written, record)
            self.written = record.seq
        return None

    def _loop_gone(self) -> bool:
        loop = self._loop
        return loop is not None and loop.is_closed()
