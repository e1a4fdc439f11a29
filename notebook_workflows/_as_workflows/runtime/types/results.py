"""``workflows.runtime.types.results``."""

from ....errors import WaitingForEvent

__all__ = ["WaitingForEvent"]
