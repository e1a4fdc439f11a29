"""``workflows.workflow``."""

from ..workflow import Workflow, WorkflowMeta

__all__ = ["Workflow", "WorkflowMeta"]
