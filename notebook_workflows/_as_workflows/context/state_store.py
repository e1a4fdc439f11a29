"""``workflows.context.state_store``."""

from ...store import DictState, InMemoryStateStore, StateStore

__all__ = ["DictState", "InMemoryStateStore", "StateStore"]
