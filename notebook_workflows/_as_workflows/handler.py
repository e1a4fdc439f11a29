"""``workflows.handler``."""

from ..handler import WorkflowHandler

__all__ = ["WorkflowHandler"]
