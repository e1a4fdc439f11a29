"""Resource injection: steps ask for clients and other heavy objects by annotation.

``Annotated[Redis, Resource(get_redis)]`` on a step parameter makes the run call ``get_redis``
(sync or async) and pass the result in. With ``cache=True`` (the default) the value is made once
per workflow instance and shared by every step that names the same factory, so a client is
opened once, not once per event. Resources belong to the workflow instance, never to the run's
state: they are not written into snapshots and are made again after a restore.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any


class Resource:
    """Marks a step parameter as injected: ``Annotated[T, Resource(factory, cache=True)]``."""

    __slots__ = ("cache", "factory")

    def __init__(self, factory: Callable[[], Any], cache: bool = True) -> None:
        if not callable(factory):
            raise TypeError(f"Resource needs a callable factory, got {factory!r}")
        self.factory = factory
        self.cache = cache

    @property
    def name(self) -> str:
        return getattr(self.factory, "__qualname__", repr(self.factory))

    def __repr__(self) -> str:
        return f"Resource({self.name}, cache={self.cache})"


class ResourceCache:
    """The resources one workflow instance has made, keyed by factory."""

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self._lock = threading.Lock()

    def cached(self, resource: Resource) -> tuple[bool, Any]:
        """``(True, value)`` when the value is already made, so no await is needed."""
        if resource.cache:
            with self._lock:
                if resource.factory in self._values:
                    return True, self._values[resource.factory]
        return False, None

    async def get(self, resource: Resource) -> Any:
        """Make (or reuse) the value; two steps asking at once share one factory call."""
        if not resource.cache:
            return await _call(resource.factory)
        found, value = self.cached(resource)
        if found:
            return value
        pending = self._pending.get(resource.factory)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[resource.factory] = future
        try:
            value = await _call(resource.factory)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: the caller re-raises it
            raise
        finally:
            self._pending.pop(resource.factory, None)
        with self._lock:
            self._values[resource.factory] = value
        future.set_result(value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


async def _call(factory: Callable[[], Any]) -> Any:
    value = factory()
    if inspect.isawaitable(value):
        value = await value
    return value
