"""``ctx.once`` records of a step running in another process, carried to the run while it runs.

A sync step in another process records its ``ctx.once`` results in its ``RemoteContext``, and
they reach the run with the step's outcome. If the run's process died while the step ran,
those records would be lost with it, and the resumed run would make the calls again: the
charge that ``once`` promised to make once would be made twice. So a checkpointed run whose
steps run on Dask or on a process pool opens a line for them. Design decisions:

* Well-kept transports, nothing home-made. On Dask: a ``distributed.Queue`` named after the
  run carries each record to the run, and a ``distributed.Event`` per record says it is in the
  run's checkpoint; both live on the scheduler, so any worker of a cluster reaches them, on
  this machine or another. On a ``ProcessPoolExecutor`` (this machine by definition): the
  standard library's ``multiprocessing.connection`` on a loopback port, authenticated with a
  random key that only the run's calls carry; each record is one connection, answered once
  the record is kept.
* ``once`` returns only when its record is in the store (the run writes it at once, as it
  does for a step on its own loop; see ``DriverCalls.journal``): a process dying after that
  loses nothing, and the resumed run's attempt gets the recorded result without calling.
* If the run does not confirm within ``ACK_TIMEOUT`` (it stopped, or cannot reach the
  store), the step goes on and the record travels with its outcome as before, which is never
  worse than without the line.
* The run's side is one thread per line, started with the first remote call that takes a
  context and stopped when the run ends, woken by a last message (waiting with a timeout
  instead would leave an error in Dask's scheduler log at every timeout).
* Runs without a checkpoint store have nothing to keep a record in, and other executors may
  run anywhere: they open no line.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["ACK_TIMEOUT", "DaskLine", "Listener", "PipeLine", "listener_for"]

ACK_TIMEOUT = 30.0  # seconds a step waits for the run to confirm a record

logger = logging.getLogger("notebook_workflows")

Record = Callable[[int, str, Any], Coroutine[Any, Any, None]]


def listener_for(
    executor: Any, run_id: str, loop: asyncio.AbstractEventLoop, record: Record
) -> Listener | None:
    """A listener for the steps ``executor`` runs, or None when it has no line (see the
    module docstring). ``record(invocation, key, encoded)`` keeps one record; it runs on
    ``loop`` and returns once the record is written."""
    client = dask_client_of(executor)
    if client is not None:
        return DaskListener(client, run_id, loop, record)
    if isinstance(executor, ProcessPoolExecutor):
        return PipeListener(loop, record)
    return None


def dask_client_of(executor: Any) -> Any:
    """The ``distributed.Client`` behind ``client.get_executor()`` (a client made with
    ``asynchronous=False``, the default), or None for any other executor."""
    if not type(executor).__module__.startswith("distributed."):
        return None
    client = getattr(executor, "_client", None)
    if getattr(client, "asynchronous", False):
        return None  # its calls are coroutines of its own loop: the outcome carries records
    return client


def _unconfirmed(key: str, why: str) -> bool:
    logger.warning("ctx.once(%r): %s; the record goes with the step's result", key, why)
    return False


# -- the worker's ends: travel with a remote step's context ---------------------------------------


class DaskLine:
    """Records to the run through the Dask scheduler (only the queue's name travels)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, invocation: int, key: str, encoded: Any) -> bool:
        """Hand the record to the run and wait until it is in the run's checkpoint; False if
        the run did not confirm it in time."""
        from distributed import Event, Queue

        token = f"{self.name}-{uuid.uuid4().hex}"
        try:
            Queue(self.name).put((token, invocation, key, encoded))
            confirmed = bool(Event(token).wait(ACK_TIMEOUT))
        except Exception as exc:  # the scheduler went away
            return _unconfirmed(key, f"the run could not be told ({exc})")
        return confirmed or _unconfirmed(key, f"the run did not confirm it in {ACK_TIMEOUT:g} s")


class PipeLine:
    """Records to the run over an authenticated loopback connection (a process pool's)."""

    def __init__(self, address: tuple[str, int], authkey: bytes) -> None:
        self.address = address
        self.authkey = authkey

    def send(self, invocation: int, key: str, encoded: Any) -> bool:
        """As ``DaskLine.send``."""
        from multiprocessing.connection import Client

        try:
            with Client(self.address, authkey=self.authkey) as conn:
                conn.send((invocation, key, encoded))
                if not conn.poll(ACK_TIMEOUT):
                    return _unconfirmed(key, f"the run did not confirm it in {ACK_TIMEOUT:g} s")
                return conn.recv() is True or _unconfirmed(key, "the run could not keep it")
        except (OSError, EOFError) as exc:  # the run's process is gone
            return _unconfirmed(key, f"the run could not be told ({exc})")


# -- the run's ends -------------------------------------------------------------------------------


class Listener(abc.ABC):
    """A thread of the run that takes records off its line, has the run keep each (on its
    loop) and confirms it to the waiting step. ``line`` is what the steps' contexts carry."""

    line: DaskLine | PipeLine

    def __init__(self, loop: asyncio.AbstractEventLoop, record: Record, name: str) -> None:
        self._loop = loop
        self._record = record
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def stop(self) -> None:
        """Stop the thread, woken by a last message sent from a thread of its own (so the
        run's loop never waits for it)."""
        if self._stop.is_set():
            return
        self._stop.set()
        threading.Thread(target=self._wake, name="once-line stop", daemon=True).start()

    def _keep(self, invocation: int, key: str, encoded: Any) -> bool:
        if self._loop.is_closed():
            return False
        call = self._record(invocation, key, encoded)
        try:
            future = asyncio.run_coroutine_threadsafe(call, self._loop)
        except RuntimeError:  # the loop closed meanwhile
            call.close()
            return False
        try:
            future.result(ACK_TIMEOUT)
        except Exception as exc:  # not kept: no confirmation, the outcome carries it
            logger.warning("ctx.once(%r) could not be recorded at once: %s", key, exc)
            return False
        return True

    @abc.abstractmethod
    def _work(self) -> None:
        """Take records off the line until stopped (the thread's body)."""

    @abc.abstractmethod
    def _wake(self) -> None:
        """Wake ``_work`` so that it sees it is stopped."""


class DaskListener(Listener):
    def __init__(self, client: Any, run_id: str, loop: asyncio.AbstractEventLoop, record: Record):
        super().__init__(loop, record, f"once-line {run_id}")
        self.client = client
        self.line = DaskLine(f"notebook-workflows-once-{run_id}-{uuid.uuid4().hex[:8]}")
        self._thread.start()

    def _wake(self) -> None:
        from distributed import Queue

        with contextlib.suppress(Exception):  # the client closed: the thread ends anyway
            Queue(self.line.name, client=self.client).put(None)

    def _work(self) -> None:
        from distributed import Event, Queue

        queue = Queue(self.line.name, client=self.client)
        while True:
            try:
                item = queue.get()
            except Exception as exc:  # the client closed: the steps fall back to the outcome
                if not self._stop.is_set():
                    logger.warning("the ctx.once line of a run stopped: %s", exc)
                return
            if item is None or self._stop.is_set():
                return
            token, invocation, key, encoded = item
            if self._keep(invocation, key, encoded):
                with contextlib.suppress(Exception):
                    Event(token, client=self.client).set()


class PipeListener(Listener):
    def __init__(self, loop: asyncio.AbstractEventLoop, record: Record):
        from multiprocessing.connection import Listener as Socket

        super().__init__(loop, record, "once-line (process pool)")
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
                        invocation, key, encoded = conn.recv()
                        conn.send(self._keep(invocation, key, encoded))
                    except (OSError, EOFError, ValueError, TypeError):
                        continue  # the step gave up waiting, or sent nonsense
        finally:
            self._socket.close()
