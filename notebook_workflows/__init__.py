"""notebook_workflows: event-driven, durable workflows that feel at home in Jupyter.

The public face: everything a user imports comes from here. The notebook layer (graphs,
widgets) and the checkpoint stores load on first use, so importing this package stays cheap.
"""

from . import _wiring
from ._loop import enable_nested_asyncio
from ._settings import settings
from ._switch import install_as_workflows
from .context import Context
from .decorators import catch_error
from .errors import (
    ContextSerdeError,
    ContextStateError,
    SnapshotError,
    WorkflowCancelledByUser,
    WorkflowCancelledError,
    WorkflowConfigurationError,
    WorkflowDone,
    WorkflowError,
    WorkflowRuntimeError,
    WorkflowStepDoesNotExistError,
    WorkflowTimeoutError,
    WorkflowValidationError,
)
from .events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    RunStatusChanged,
    StartEvent,
    StepFailed,
    StepFinished,
    StepStarted,
    StopEvent,
)
from .handler import WorkflowHandler
from .resources import Resource
from .retry import ConstantDelayRetryPolicy, ExponentialBackoffRetryPolicy, RetryPolicy
from .step import step
from .workflow import Workflow

__version__ = "0.1.0"

_wiring.plug_layers()  # checkpoint/ and notebook/ into the engine's ports, loaded on first use


def __getattr__(name: str) -> object:
    # the notebook face loads on first use: ``from notebook_workflows import RunBrowser``
    # (and RunDiff, export_html)
    if name == "RunBrowser":
        from .notebook.browser import RunBrowser

        return RunBrowser
    if name == "RunDiff":
        from .notebook.rundiff import RunDiff

        return RunDiff
    if name == "export_html":
        from .notebook.export import export_html

        return export_html
    raise AttributeError(f"module 'notebook_workflows' has no attribute {name!r}")


__all__ = [
    "ConstantDelayRetryPolicy",
    "Context",
    "ContextSerdeError",
    "ContextStateError",
    "Event",
    "ExponentialBackoffRetryPolicy",
    "HumanResponseEvent",
    "InputRequiredEvent",
    "Resource",
    "RetryPolicy",
    "RunBrowser",
    "RunDiff",
    "RunStatusChanged",
    "SnapshotError",
    "StartEvent",
    "StepFailed",
    "StepFinished",
    "StepStarted",
    "StopEvent",
    "Workflow",
    "WorkflowCancelledByUser",
    "WorkflowCancelledError",
    "WorkflowConfigurationError",
    "WorkflowDone",
    "WorkflowError",
    "WorkflowHandler",
    "WorkflowRuntimeError",
    "WorkflowStepDoesNotExistError",
    "WorkflowTimeoutError",
    "WorkflowValidationError",
    "catch_error",
    "enable_nested_asyncio",
    "export_html",
    "install_as_workflows",
    "settings",
    "step",
]
