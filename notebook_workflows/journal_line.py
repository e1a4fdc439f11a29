"""``ctx.once`` records of a step running in another process, carried to the run while it runs.

A sync step in another process records its ``ctx.once`` results in its ``RemoteContext``, and
they reach the run with the step's outcome. If the run's process died while the step ran,
those records would be lost with it, and the resumed run would make the calls again: the
charge that ``once`` promised to make once would be made twice; so would a call that Dask
starts again after its worker died. So a run whose steps run on Dask, and a checkpointed run
whose steps run on a process pool, open a line for them. Design decisions:

* Well-kept transports, nothing home-made. On Dask: a ``distributed.Queue`` named after the
  run carries each message to the run, and a ``distributed.Variable`` per message carries
  the run's answer back (it waits until set, and the asker deletes it); both live on the
  scheduler, so any worker of a cluster reaches them, on this machine or another. On a
  ``ProcessPoolExecutor`` (this machine by definition): the standard library's
  ``multiprocessing.connection`` on a loopback port, authenticated with a random key that
  only the run's calls carry; each message is one connection, answered on it (a record
  once it is kept).
* ``once`` returns only when its record is in the store (the run writes it at once, as it
  does for a step on its own loop; see ``DriverCalls.journal``): a process dying after that
  loses nothing, and the resumed run's attempt gets the recorded result without calling.
  And it calls only once every checkpoint of the run before it is in the store: the run
  answers the question it asks first (below) only then (``DriverCalls.once_ready``).
* Dask runs a task again, on another worker, when the worker running it dies, from the very
  bytes first submitted: their ``once`` journal is the one the call left with, without
  what its first start recorded. So before a call makes a ``once`` call that its journal
  does not answer, it asks the run for the records the run holds for its invocation
  (``records_held``), naming itself by its invocation, its call number (the counter of its
  nonce) and the number the run gave this start of it (0 until its first question): a call
  started again gets the records its first start sent, and does not call again. The run
  answers only the latest start of a call it still waits for: a call it gave up on (the
  run ended, or a timeout moved the step to its next attempt, while the old attempt still
  runs on) and a start that a newer one replaced (Dask took its worker for dead, but it
  lives on) are refused, and make no call. If the run cannot be asked, ``once`` raises
  rather than call without knowing. The question costs one round trip per ``once`` call
  that does call, beside the effect it guards; steps that never call ``once`` pay nothing.
  A process pool never starts a call twice (a dead worker breaks the pool and the run
  fails), but an attempt the run gave up on runs on there too: its calls ask as well.
* For the same reason a run on Dask opens its line with or without a checkpoint store: the
  records must reach the run for a call started again to get them. Without a store there is
  nothing to wait for, so a record is only handed to the scheduler (``DaskLine.confirms``):
  the run takes messages in the order they came, so a record is in the run before the
  question of any later start is answered. Process pools open a line only for checkpointed
  runs, which have a store to keep the records in.
* The run's side of a Dask line talks to the scheduler from a thread of its own, never from
  the client's event loop; there, ``distributed`` carries each call over to the client's
  loop, so a client made with ``asynchronous=True`` (its loop is often the run's) serves
  the line as a synchronous client does.
* If the run does not confirm a record within ``ACK_TIMEOUT`` (it stopped, or its loop is
  stuck), the step goes on and the record travels with its outcome as before, which is
  never worse than without the line. If the run answers that it could not keep the record
  (its store failed), ``once`` raises with the run's words, as it does in the run's own
  process, and the record still travels with the step's failure.
* The run's side is one thread per line, started with the first remote call that takes a
  context and stopped when the run ends, woken by a last message (waiting with a timeout
  instead would leave an error in Dask's scheduler log at every timeout).
* Other executors may run anywhere: they open no line.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["ACK_TIMEOUT", "DaskLine", "Line", "LineError", "Listener", "PipeLine", "listener_for"]

ACK_TIMEOUT = 30.0  # seconds a step waits for the run to answer

logger = logging.getLogger("notebook_workflows")

# keep(invocation, key, encoded): write one record down
Keep = Callable[[int, str, Any], Coroutine[Any, Any, None]]
# held(invocation, call, start, key): the records the run holds for a call it waits for and
# the number of the call's start asking, or why it gets none (and may not call ``key``)
Held = Callable[[int, int, int, str], Coroutine[Any, Any, "tuple[dict[str, Any], int] | str"]]


class LineError(Exception):
    """The run did not give a remote call what it asked for; the message says why."""


def listener_for(
    executor: Any,
    run_id: str,
    loop: asyncio.AbstractEventLoop,
    keep: Keep,
    held: Held,
    checkpointed: bool,
) -> Listener | None:
    """A listener for the steps ``executor`` runs, or None when it has no line (see the
    module docstring). ``keep(invocation, key, encoded)`` writes one record and
    ``held(invocation, call, start)`` answers a call's question; both run on ``loop``."""
    client = dask_client_of(executor)
    if client is not None:
        return DaskListener(client, run_id, loop, keep, held, confirms=checkpointed)
    if checkpointed and isinstance(executor, ProcessPoolExecutor):
        return PipeListener(loop, keep, held)
    return None


def dask_client_of(executor: Any) -> Any:
    """The ``distributed.Client`` behind ``client.get_executor()`` (synchronous or not), or
    None for any other executor."""
    if not type(executor).__module__.startswith("distributed."):
        return None
    return getattr(executor, "_client", None)


def _unconfirmed(key: str, why: str) -> bool:
    logger.warning("ctx.once(%r): %s; the record goes with the step's result", key, why)
    return False


def _why(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError)):
        return f"no answer in {ACK_TIMEOUT:g} s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- the worker's ends: travel with a remote step's context ---------------------------------------


class Line(abc.ABC):
    """A remote step's end of its run's line. Messages are tuples: ``("once", invocation,
    key, encoded)`` (answered True, or why the run could not keep it) and ``("held",
    invocation, call, start, key)`` (answered ``{"records": ..., "start": n}``,
    ``{"refused": why}``, or why the run could not look)."""

    confirms = True  # whether a record waits for the run to have it (see ``DaskLine``)

    def send(self, invocation: int, key: str, encoded: Any) -> bool:
        """Hand the record to the run and wait until the run has it (in its checkpoint);
        False if the run did not confirm it, ``LineError`` if the run could not keep it (the
        message says why: a store that failed)."""
        message = ("once", invocation, key, encoded)
        try:
            if not self.confirms:
                self._tell(message)
                return True
            answer = self._ask(message)
        except Exception as exc:  # the run's process, or the scheduler, went away
            return _unconfirmed(key, f"the run did not confirm it ({_why(exc)})")
        if answer is not True:
            raise LineError(str(answer))
        return True

    def records_held(
        self, invocation: int, call: int, start: int, key: str
    ) -> tuple[dict[str, Any], int]:
        """The ``ctx.once`` records the run holds for ``invocation``, asked by the call
        numbered ``call`` before it calls ``once(key)``, and the number the run gave this
        start of the call (``start`` is 0 on its first question); ``LineError`` if the run
        refuses the call or cannot be asked."""
        try:
            answer = self._ask(("held", invocation, call, start, key))
        except Exception as exc:
            answer = f"the run could not be asked ({_why(exc)})"
        if isinstance(answer, dict) and "records" in answer:
            return dict(answer["records"]), int(answer["start"])
        if isinstance(answer, dict):
            raise LineError(f"{answer.get('refused')}; it makes no call")
        raise LineError(
            f"{answer}, so it cannot tell whether an earlier start of this call, on a worker "
            f"that died, already made it; it makes no call rather than risk making it twice. "
            f"If the run failed and has a checkpoint store, resume it "
            f"(workflow.resume(run_id, store=...)): the records it holds are used"
        )

    @abc.abstractmethod
    def _ask(self, message: tuple[Any, ...]) -> Any:
        """Send ``message`` to the run and return its answer (raises if none came)."""

    def _tell(self, message: tuple[Any, ...]) -> None:
        """Send ``message`` to the run, which answers nothing (lines that do not confirm)."""
        raise NotImplementedError


class DaskLine(Line):
    """Through the Dask scheduler (only the queue's name travels). For a run without a
    checkpoint store (``confirms`` False) a record is only handed to the scheduler: the run
    has no store to wait for, and takes messages in order, so the record is in the run
    before any later question of a start of the call is answered."""

    def __init__(self, name: str, confirms: bool = True) -> None:
        self.name = name
        self.confirms = confirms

    def _ask(self, message: tuple[Any, ...]) -> Any:
        from distributed import Variable

        token = f"{self.name}-{uuid.uuid4().hex}"
        answer = Variable(token)
        try:
            self._queue().put((token, message))
            return answer.get(timeout=ACK_TIMEOUT)
        finally:
            with contextlib.suppress(Exception):
                answer.delete()

    def _tell(self, message: tuple[Any, ...]) -> None:
        self._queue().put((None, message))

    def _queue(self) -> Any:
        from distributed import Queue

        queue = _QUEUES.get(self.name)
        if queue is None:
            while len(_QUEUES) >= _QUEUES_KEPT:
                _QUEUES.pop(next(iter(_QUEUES)), None)
            queue = _QUEUES[self.name] = Queue(self.name)
        return queue


# the queues of lines a worker process has used, by name: opening one costs a round trip to
# the scheduler, which the next calls of the same run on this worker need not pay
_QUEUES: dict[str, Any] = {}
_QUEUES_KEPT = 32


class PipeLine(Line):
    """Over an authenticated loopback connection (a process pool's), one per message."""

    def __init__(self, address: tuple[str, int], authkey: bytes) -> None:
        self.address = address
        self.authkey = authkey

    def _ask(self, message: tuple[Any, ...]) -> Any:
        from multiprocessing.connection import Client

        with Client(self.address, authkey=self.authkey) as conn:
            conn.send(message)
            if not conn.poll(ACK_TIMEOUT):
                raise TimeoutError
            return conn.recv()


# -- the run's ends -------------------------------------------------------------------------------


class Listener(abc.ABC):
    """A thread of the run that takes messages off its line, has the run answer each (on its
    loop) and sends the answer to the waiting step. ``line`` is what the steps' contexts
    carry."""

    line: DaskLine | PipeLine

    def __init__(self, loop: asyncio.AbstractEventLoop, keep: Keep, held: Held, name: str):
        self._loop = loop
        self._keep = keep
        self._held = held
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def stop(self) -> None:
        """Stop the thread, woken by a last message sent from a thread of its own (so the
        run's loop never waits for it)."""
        if self._stop.is_set():
            return
        self._stop.set()
        threading.Thread(target=self._wake, name="once-line stop", daemon=True).start()

    def _answer(self, message: Any) -> Any:
        """The answer to one message (see ``Line``); ``ValueError`` for one of no line."""
        kind, *fields = message
        if kind == "once":
            invocation, key, encoded = fields
            kept, why = self._on_loop(self._keep(invocation, key, encoded))
            if kept:
                return True
            logger.warning("ctx.once(%r) could not be recorded at once: %s", key, why)
            return why
        if kind == "held":
            invocation, call, start, key = fields
            found, answer = self._on_loop(self._held(invocation, call, start, key))
            if not found:
                return f"the run could not look them up ({answer})"
            if isinstance(answer, str):
                return {"refused": answer}
            return {"records": answer[0], "start": answer[1]}
        raise ValueError(kind)

    def _on_loop(self, call: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
        """Run ``call`` on the run's loop and wait for it: ``(True, its value)``, or
        ``(False, why it did not end well)``."""
        if self._loop.is_closed():
            call.close()
            return False, "the run has ended"
        try:
            future = asyncio.run_coroutine_threadsafe(call, self._loop)
        except RuntimeError:  # the loop closed meanwhile
            call.close()
            return False, "the run has ended"
        try:
            return True, future.result(ACK_TIMEOUT)
        except Exception as exc:
            return False, _why(exc)

    @abc.abstractmethod
    def _work(self) -> None:
        """Take messages off the line until stopped (the thread's body)."""

    @abc.abstractmethod
    def _wake(self) -> None:
        """Wake ``_work`` so that it sees it is stopped."""


class DaskListener(Listener):
    line: DaskLine

    def __init__(
        self,
        client: Any,
        run_id: str,
        loop: asyncio.AbstractEventLoop,
        keep: Keep,
        held: Held,
        confirms: bool = True,
    ) -> None:
        super().__init__(loop, keep, held, f"once-line {run_id}")
        self.client = client
        name = f"notebook-workflows-once-{run_id}-{uuid.uuid4().hex[:8]}"
        self.line = DaskLine(name, confirms)
        self._thread.start()

    def _wake(self) -> None:
        from distributed import Queue

        with contextlib.suppress(Exception):  # the client closed: the thread ends anyway
            Queue(self.line.name, client=self.client).put(None)

    def _work(self) -> None:
        from distributed import Queue, Variable

        try:
            queue = Queue(self.line.name, client=self.client)
        except (Exception, asyncio.CancelledError) as exc:
            logger.warning("the ctx.once line of a run could not open: %s", _why(exc))
            return
        while True:
            try:
                item = queue.get()
            except (Exception, asyncio.CancelledError) as exc:  # the client closed, or its
                # loop ended: the steps fall back to the outcome
                if not self._stop.is_set():
                    logger.warning("the ctx.once line of a run stopped: %s", _why(exc))
                return
            if item is None or self._stop.is_set():
                return
            try:
                token, message = item
                answer = self._answer(message)
            except (TypeError, ValueError):
                continue  # not a message of this line
            if token is None:  # a record of a line that does not confirm
                continue
            with contextlib.suppress(Exception):  # the step gave up waiting
                Variable(token, client=self.client).set(answer)


class PipeListener(Listener):
    line: PipeLine

    def __init__(self, loop: asyncio.AbstractEventLoop, keep: Keep, held: Held) -> None:
        from multiprocessing.connection import Listener as Socket

        super().__init__(loop, keep, held, "once-line (process pool)")
        authkey = os.urandom(32)
        self._socket = Socket(("127.0.0.1", 0), authkey=authkey)
        self.line = PipeLine(self._socket.address, authkey)
        self._thread.start()

    def _wake(self) -> None:
        from multiprocessing.connection import Client

        with contextlib.suppress(OSError, EOFError):
            Client(self.line.address, authkey=self.line.authkey).close()

    def _work(self) -> None:
        from multiprocessing import AuthenticationError

        try:
            while not self._stop.is_set():
                try:
                    conn = self._socket.accept()
                except AuthenticationError:
                    continue  # not one of the run's calls
                except OSError:
                    return
                with conn:
                    if self._stop.is_set():
                        return
                    try:
                        conn.send(self._answer(conn.recv()))
                    except (OSError, EOFError, ValueError, TypeError):
                        continue  # the step gave up waiting, or sent nonsense
        finally:
            self._socket.close()
