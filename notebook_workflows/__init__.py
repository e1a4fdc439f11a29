"""notebook_workflows: event-driven, durable workflows that feel at home in Jupyter.

The public face: everything a user imports comes from here. The notebook layer (graphs,
widgets) and the checkpoint stores load on first use, so importing this package stays cheap.
"""

from ._loop import enable_nested_asyncio
from .context import Context
from .errors import (
    ContextSerdeError,
    SnapshotError,
    WorkflowCancelledError,
    WorkflowError,
    WorkflowRuntimeError,
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

__all__ = [
    "ConstantDelayRetryPolicy",
    "Context",
    "ContextSerdeError",
    "Event",
    "ExponentialBackoffRetryPolicy",
    "HumanResponseEvent",
    "InputRequiredEvent",
    "Resource",
    "RetryPolicy",
    "RunStatusChanged",
    "SnapshotError",
    "StartEvent",
    "StepFailed",
    "StepFinished",
    "StepStarted",
    "StopEvent",
    "Workflow",
    "WorkflowCancelledError",
    "WorkflowError",
    "WorkflowHandler",
    "WorkflowRuntimeError",
    "WorkflowTimeoutError",
    "WorkflowValidationError",
    "enable_nested_asyncio",
    "step",
]
