"""The engine's runtime: a run as plain data, the reducer that decides, the driver that acts.

``state`` holds what a run is made of; ``transitions`` and ``commands`` are the reducer's
vocabulary; ``reducer`` (with ``routing``, ``joins``, ``outcome``, ``failures``, ``stepping``
and ``replay``, which replays recorded step calls in a rerun) folds one transition into the
state and answers with commands, with no asyncio and no I/O; ``driver`` (with ``calls`` and
``tasks``) carries the commands out on the event loop and feeds back what happened; ``view``
is the frozen picture of a run that everything outside the engine reads.
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
