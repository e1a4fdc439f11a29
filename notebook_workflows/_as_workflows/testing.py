"""``workflows.testing``."""

from ..testing import WorkflowTestResult, WorkflowTestRunner

__all__ = ["WorkflowTestResult", "WorkflowTestRunner"]
