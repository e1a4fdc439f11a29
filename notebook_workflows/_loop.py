"""The sync bridge: run a coroutine to completion from plain synchronous code.

Outside any event loop (a script, a REPL) that is simply ``asyncio.run``. Inside a running loop
(a normal notebook cell, where the kernel's loop is busy running the cell) the coroutine cannot
run on that loop without re-entering it, so it runs on a private loop in a helper thread that is
started once and reused, the way anyio's blocking portal works. Three things make that feel like
running in the cell itself:

* the caller's context variables travel with the coroutine, and with them ipykernel's record of
  which cell is executing, so what steps ``print`` or ``display`` appears under that cell;
* an interrupt (Ctrl-C, the kernel's stop button) while the caller blocks cancels the coroutine
  instead of leaving it running in the background, and waits until it has stopped;
* an error leaves nothing behind: the coroutine is created inside the portal, so a failure to
  start it starts nothing.

Re-entering the kernel's own loop (for objects bound to it) needs the nest-asyncio patch, which
breaks other libraries; it is applied only when asked for, with ``enable_nested_asyncio()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import sys
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# How long an interrupted run_sync waits for the cancelled run to stop before giving control
# back (steps on worker threads cannot be stopped; they are left to finish on their own).
CANCEL_GRACE_SECONDS = 5.0


class _Portal:
    """One event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self._serve, name="notebook_workflows-portal", daemon=True
        )
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> _Call[T]:
        call: _Call[T] = _Call()
        cv = contextvars.copy_context()

        def begin() -> None:
            if not call.future.set_running_or_notify_cancel():
                return
            try:
                coro = cv.run(factory)
                if sys.version_info >= (3, 11):
                    task = self.loop.create_task(coro, context=cv)
                else:  # pragma: no cover - Python 3.10
                    task = cv.run(self.loop.create_task, coro)
            except BaseException as exc:
                call.future.set_exception(exc)
                return
            call.task = task
            task.add_done_callback(call.settle)

        self.loop.call_soon_threadsafe(begin)
        return call

    def cancel(self, call: _Call[Any]) -> None:
        task = call.task
        if task is not None:
            self.loop.call_soon_threadsafe(task.cancel)
        else:
            call.future.cancel()


class _Call(Generic[T]):
    """A coroutine running on the portal, as seen from the calling thread."""

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.task: asyncio.Task[Any] | None = None

    def settle(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.future.set_exception(asyncio.CancelledError())
        elif task.exception() is not None:
            self.future.set_exception(task.exception())
        else:
            self.future.set_result(task.result())


_portal: _Portal | None = None
_portal_lock = threading.Lock()
_nested_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def portal() -> _Portal:
    global _portal
    with _portal_lock:
        if _portal is None or not _portal.thread.is_alive():
            _portal = _Portal()
        return _portal


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def in_notebook_kernel() -> bool:
    """True inside a Jupyter kernel (where a blocked cell blocks the widgets too)."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def enable_nested_asyncio() -> None:
    """Let ``run_sync`` run workflows on the notebook's own event loop, re-entering it.

    Use it only when steps need objects bound to that loop (a client created in an ``await``
    cell, say). It patches the loop with nest-asyncio (``nest-asyncio2`` when installed: the
    original is unmaintained), which is known to break anyio, uvloop and other libraries; the
    default, a private loop in a helper thread, has no such side effects. Install it with
    ``pip install 'notebook-workflows[nest]'``.
    """
    loop = running_loop()
    if loop is None:
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
    try:
        import nest_asyncio2 as nest
    except ImportError:
        try:
            import nest_asyncio as nest
        except ImportError:
            raise ImportError(
                "enable_nested_asyncio() needs nest-asyncio2: "
                "pip install 'notebook-workflows[nest]'"
            ) from None
    nest.apply(loop)
    _nested_loops.add(loop)


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``factory()`` to completion and return its result, from synchronous code."""
    loop = running_loop()
    if loop is None:
        return asyncio.run(factory())
    if loop in _nested_loops:
        return loop.run_until_complete(factory())
    p = portal()
    if threading.current_thread() is p.thread:
        raise RuntimeError(
            "run_sync was called from code running on the run_sync helper loop (inside a step "
            "of another run_sync run?); await workflow.run(...) there instead"
        )
    call = p.submit(factory)
    try:
        return call.future.result()
    except KeyboardInterrupt:
        p.cancel(call)
        with contextlib.suppress(BaseException):
            call.future.result(timeout=CANCEL_GRACE_SECONDS)  # let the cancellation land
        raise
