"""The sync bridge: run a coroutine to completion from plain synchronous code.

Outside any event loop (a script, a REPL) that is simply ``asyncio.run``. Inside a running loop
(a normal notebook cell, where the kernel's loop is busy running the cell) the coroutine cannot
run on that loop without re-entering it, so it runs on a private loop in a helper thread that is
started once and reused, the way anyio's blocking portal works. The caller's context variables
travel with it, and an interrupt (Ctrl-C, a kernel interrupt) while the caller blocks cancels the
coroutine instead of leaving it running in the background.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


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

    def submit(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        cv = contextvars.copy_context()

        def begin() -> None:
            if not done.set_running_or_notify_cancel():
                return
            try:
                coro = cv.run(factory)
                if sys.version_info >= (3, 11):
                    task = self.loop.create_task(coro, context=cv)
                else:  # pragma: no cover - Python 3.10
                    task = cv.run(self.loop.create_task, coro)
            except BaseException as exc:
                done.set_exception(exc)
                return

            def finish(t: asyncio.Task[T]) -> None:
                if t.cancelled():
                    done.set_exception(asyncio.CancelledError())
                elif t.exception() is not None:
                    done.set_exception(t.exception())  # type: ignore[arg-type]
                else:
                    done.set_result(t.result())

            task.add_done_callback(finish)
            done.task = task  # type: ignore[attr-defined]

        self.loop.call_soon_threadsafe(begin)
        return done

    def cancel(self, future: concurrent.futures.Future[Any]) -> None:
        task = getattr(future, "task", None)
        if task is not None:
            self.loop.call_soon_threadsafe(task.cancel)
        else:
            future.cancel()


_portal: _Portal | None = None
_portal_lock = threading.Lock()


def portal() -> _Portal:
    global _portal
    with _portal_lock:
        if _portal is None or not _portal.thread.is_alive():
            _portal = _Portal()
        return _portal


def in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``factory()`` to completion and return its result, from synchronous code."""
    if not in_running_loop():
        return asyncio.run(factory())
    p = portal()
    if threading.current_thread() is p.thread:
        raise RuntimeError("run_sync cannot be called from inside a workflow run on the portal")
    future = p.submit(factory)
    try:
        return future.result()
    except KeyboardInterrupt:
        p.cancel(future)
        with contextlib.suppress(BaseException):
            future.result(timeout=5)  # let the cancellation land before returning
        raise
