"""``ctx.once`` records of a step running on a Dask cluster, carried to the run while it runs.

A sync step in another process records its ``ctx.once`` results in its ``RemoteContext``, and
they reach the run with the step's outcome. If the run's process died while the step ran,
those records would be lost with it, and the resumed run would make the calls again: the
charge that ``once`` promised to make once would be made twice. So a checkpointed run whose
steps run on Dask opens a line for them. Design decisions:

* Dask's own coordination primitives, nothing home-made: a ``distributed.Queue`` named after
  the run carries each record to the run, and a ``distributed.Event`` per record says it is in
  the run's checkpoint. Both live on the scheduler, so any worker of a cluster reaches them,
  on this machine or another.
* ``once`` returns only when its record is in the store (the run writes it at once, as it
  does for a step on its own loop; see ``DriverCalls.journal``): a process dying after that
  loses nothing, and the resumed run's attempt gets the recorded result without calling.
* If the run does not confirm within ``ACK_TIMEOUT`` (it stopped, or cannot reach the
  store), the step goes on and the record travels with its outcome as before, which is never
  worse than without the line.
* The run's side is one thread per run, started with the first remote call that takes a
  context and stopped when the run ends (a last item put on the queue wakes it: waiting with
  a timeout instead would leave an error in the scheduler's log at every timeout).
* Runs without a checkpoint store have nothing to keep a record in: they open no line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["ACK_TIMEOUT", "JournalLine", "LineListener", "dask_client_of"]

ACK_TIMEOUT = 30.0  # seconds a step waits for the run to confirm a record

logger = logging.getLogger("notebook_workflows")


def dask_client_of(executor: Any) -> Any:
    """The ``distributed.Client`` behind ``client.get_executor()`` (a client made with
    ``asynchronous=False``, the default), or None for any other executor."""
    if not type(executor).__module__.startswith("distributed."):
        return None
    client = getattr(executor, "_client", None)
    if getattr(client, "asynchronous", False):
        return None  # its calls are coroutines of its own loop: the outcome carries records
    return client


class JournalLine:
    """The worker's end: travels with a remote step's context (only its name does)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, invocation: int, key: str, encoded: Any) -> bool:
        """Hand the record to the run and wait until it is in the run's checkpoint; False if
        the run did not confirm it in time (the record then goes with the step's outcome)."""
        from distributed import Event, Queue

        token = f"{self.name}-{uuid.uuid4().hex}"
        try:
            Queue(self.name).put((token, invocation, key, encoded))
            confirmed = bool(Event(token).wait(ACK_TIMEOUT))
        except Exception as exc:  # the scheduler went away: the outcome carries the record
            logger.warning("ctx.once(%r): the run could not be told at once (%s)", key, exc)
            return False
        if not confirmed:
            logger.warning(
                "ctx.once(%r): the run did not confirm the record within %g s; it goes with "
                "the step's result",
                key,
                ACK_TIMEOUT,
            )
        return confirmed


class LineListener:
    """The run's end: a thread that takes the records off the queue, has the run record each
    (``record(invocation, key, encoded)``, a coroutine run on the run's loop, which returns
    once the record is written) and then confirms it to the waiting step."""

    def __init__(
        self,
        client: Any,
        run_id: str,
        loop: asyncio.AbstractEventLoop,
        record: Callable[[int, str, Any], Awaitable[None]],
    ) -> None:
        self.client = client
        self.line = JournalLine(f"notebook-workflows-once-{run_id}-{uuid.uuid4().hex[:8]}")
        self._loop = loop
        self._record = record
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=f"once-line {run_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread: a last item on the queue wakes it (put from a thread of its own,
        so the run's loop does not wait for the scheduler)."""
        if self._stop.is_set():
            return
        self._stop.set()
        threading.Thread(target=self._wake, name="once-line stop", daemon=True).start()

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
            if item is None or self._stop.is_set() or self._loop.is_closed():
                return
            token, invocation, key, encoded = item
            try:
                asyncio.run_coroutine_threadsafe(
                    self._record(invocation, key, encoded), self._loop
                ).result(ACK_TIMEOUT)
                Event(token, client=self.client).set()
            except Exception as exc:  # not recorded: no confirmation, the outcome carries it
                logger.warning("ctx.once(%r) could not be recorded at once: %s", key, exc)
