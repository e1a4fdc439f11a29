"""Errors raised by notebook_workflows.

Every error is meant to be read by a person: it names the step, the key or the run it is about
and, where there is one, what to do next.
"""

from __future__ import annotations


class WorkflowError(Exception):
    """Base class of every error this package raises on purpose."""


class WorkflowValidationError(WorkflowError):
    """The workflow's steps do not form a valid graph; the message lists every problem."""

    def __init__(self, problems: list[str] | str, workflow: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        head = f"{workflow} is not a valid workflow" if workflow else "invalid workflow"
        if len(self.problems) == 1:
            message = f"{head}: {self.problems[0]}"
        else:
            message = head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class WorkflowRuntimeError(WorkflowError):
    """The run cannot go on: bad use of the API during a run, or a run that stalled."""


class WorkflowTimeoutError(WorkflowError, TimeoutError):
    """A run, or one step, took longer than its ``timeout``."""


class WorkflowCancelledError(WorkflowError):
    """The run was cancelled (``handler.cancel()``, a kernel interrupt, Ctrl-C)."""


class ContextSerdeError(WorkflowError, ValueError):
    """A context snapshot, or a value put in the store, cannot be (de)serialized."""


class SnapshotError(WorkflowError):
    """A checkpoint store cannot save or load a snapshot."""
