"""``workflows.types``: the type names of a run's result."""

from typing import Any, TypeVar, Union

from ..events import StopEvent

StopEventT = TypeVar("StopEventT", bound=StopEvent)
RunResultT = Union[StopEventT, Any]  # noqa: UP007  (a TypeVar in a union needs Union here)

__all__ = ["RunResultT", "StopEventT"]
