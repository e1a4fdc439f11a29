"""The engine's runtime: the run's explicit state, and the read-only view of it.

``state`` holds what a run is made of and the transitions between its states; ``view`` is the
frozen picture of a run that everything outside the engine reads.
"""

from .state import Changes, CollectBuffer, Invocation, RunState, Waiter
from .view import InvocationView, QueuedEvent, RunView, StepCall, current_step

__all__ = [
    "Changes",
    "CollectBuffer",
    "Invocation",
    "InvocationView",
    "QueuedEvent",
    "RunState",
    "RunView",
    "StepCall",
    "Waiter",
    "current_step",
]
