"""Errors raised by notebook_workflows.

Every error is meant to be read by a person: it names the step, the key or the run it is about
and, where there is one, what to do next.

The names llama-index-workflows 2.26 has in ``workflows.errors`` are all here, so ``except``
clauses written for it port by changing the import line. They sit in one hierarchy under
``WorkflowError`` (this project's base), arranged so that an ``except`` written for either
library catches what it should::

    WorkflowError
    ├── WorkflowConfigurationError        the workflow as defined cannot run
    │   └── WorkflowValidationError       ... because its steps do not form a valid graph
    ├── WorkflowRuntimeError              bad use of the API during a run, a stalled run
    │   ├── WorkflowStepDoesNotExistError an event addressed to a step that is not there
    │   └── ContextStateError             a Context method called where it cannot work
    ├── WorkflowTimeoutError (also TimeoutError)
    ├── WorkflowCancelledError            the run was cancelled
    │   └── WorkflowCancelledByUser       ... by the user: handler.cancel(), an interrupt
    ├── WorkflowDone                      (the peer's internal signal; never raised here)
    ├── ContextSerdeError (also ValueError)
    └── SnapshotError
"""

from __future__ import annotations


class WorkflowError(Exception):
    """Base class of every error this package raises on purpose."""


class WorkflowConfigurationError(WorkflowError):
    """The workflow, as defined, cannot run: found before anything starts.

    llama-index-workflows raises it for a workflow with no steps, no step accepting the
    ``StartEvent`` or none returning a ``StopEvent``; here those are ``WorkflowValidationError``
    problems, and ``WorkflowValidationError`` is a subclass, so ``except
    WorkflowConfigurationError`` catches them too.
    """


class WorkflowValidationError(WorkflowConfigurationError):
    """The workflow's steps do not form a valid graph; the message lists every problem.

    ``problems`` holds them one by one. ``Workflow.validate()`` raises it, and ``run`` validates
    first. Built from one message (``WorkflowValidationError("...")``) as well.
    """

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


class WorkflowStepDoesNotExistError(WorkflowRuntimeError):
    """An event was addressed to a step the workflow does not have
    (``ctx.send_event(ev, step="name")``); the message names the step and lists those there are.

    A ``WorkflowRuntimeError``, which is what such a mistake raised before this name existed.
    """


class ContextStateError(WorkflowRuntimeError):
    """A ``Context`` method was called where it cannot work: a step-only method such as
    ``collect_events``, ``wait_for_event`` or ``retry_info`` called outside a step, or a run-only
    one before the run started. The message says which method and where to call it instead.

    A ``WorkflowRuntimeError``, which is what these mistakes raised before this name existed.
    """


class WorkflowTimeoutError(WorkflowError, TimeoutError):
    """A run, or one step, took longer than its ``timeout``.

    Also a ``TimeoutError``, so ``except TimeoutError`` catches it. Time spent waiting for a
    human never counts.
    """


class WorkflowCancelledError(WorkflowError):
    """The run was cancelled (``handler.cancel()``, a kernel interrupt, Ctrl-C).

    A cancelled run that was checkpointed can be resumed with ``Workflow.resume(run_id)``.
    """


class WorkflowCancelledByUser(WorkflowCancelledError):
    """The run was cancelled by the user: ``await handler.cancel()``, a kernel interrupt or
    Ctrl-C. llama-index-workflows' name; a ``WorkflowCancelledError``, so ``except`` clauses
    written with either name catch it."""


class WorkflowDone(WorkflowError):
    """llama-index-workflows' internal signal that a run has ended, used there to stop its
    workers. This engine never raises it; it exists so code that names it still imports."""


class ContextSerdeError(WorkflowError, ValueError):
    """A context snapshot, or a value put in the store, cannot be (de)serialized.

    ``Context.from_dict`` raises it for data of another workflow, of an unknown format version
    or malformed data, saying which; ``ctx.store.set`` for a value it could not save, naming
    the key path and the type. Also a ``ValueError``.
    """


class SnapshotError(WorkflowError):
    """A checkpoint store cannot save or load a snapshot."""


__all__ = [
    "ContextSerdeError",
    "ContextStateError",
    "SnapshotError",
    "WaitingForEvent",
    "WorkflowCancelledByUser",
    "WorkflowCancelledError",
    "WorkflowConfigurationError",
    "WorkflowDone",
    "WorkflowError",
    "WorkflowRuntimeError",
    "WorkflowStepDoesNotExistError",
    "WorkflowTimeoutError",
    "WorkflowValidationError",
]


class RecordedError(Exception):
    """An exception as a snapshot keeps it: its class's name and its message.

    Loading a snapshot never runs code, so an exception stored in an event (the ``exception``
    of a ``StepFailedEvent``, say) comes back as this, not as its original class: ``type_name``
    is that class's qualified name and ``str(error)`` its message. ``isinstance`` checks
    against the original class do not hold after a restore; compare ``type_name`` instead.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"RecordedError({self.type_name!r}, {str(self)!r})"


class WaitingForEvent(Exception):
    """Named for code written for llama-index-workflows, which raises it inside a step to park
    the step until an event arrives. This engine never raises it: ``ctx.wait_for_event``
    suspends the step where it awaits. Code that re-raises it (LlamaIndex's agents do, around
    tool calls) works unchanged."""
