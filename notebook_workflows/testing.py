"""Helpers for testing workflows, under llama-index-workflows' module path
(``workflows.testing``).

``WorkflowTestRunner(workflow).run(...)`` runs a workflow to the end and hands back what it
streamed, counted by type, with the result and the context. It is built only on the public
API (``workflow.run``, ``handler.stream_events``, ``await handler``), so it behaves exactly as
a user's own run does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .events import StartEvent

if TYPE_CHECKING:
    from .context import Context
    from .workflow import Workflow


@dataclass
class WorkflowTestResult:
    """What ``WorkflowTestRunner.run`` saw.

    ``collected``: everything the run streamed, in order: events written with
    ``ctx.write_event_to_stream``, questions, the final ``StopEvent``, with
    ``expose_internal`` the ``StepStateChanged`` events, and with ``lifecycle`` the records
    ``StepStarted``, ``StepFinished``, ``StepFailed`` and ``RunStatusChanged``.
    ``event_types``: how many of each type. ``result``: what ``await handler`` gave. ``ctx``:
    the run's context.
    """

    collected: list[Any]
    event_types: dict[type, int]
    result: Any
    ctx: Context[Any]


class WorkflowTestRunner:
    """Runs a workflow end to end in a test and collects what it streams.

    For example, ``outcome = await WorkflowTestRunner(MyWorkflow()).run(StartEvent(n=3))``,
    then ``outcome.result``, ``outcome.event_types[Progress]``, ``outcome.collected``.
    """

    def __init__(self, workflow: Workflow) -> None:
        self._workflow = workflow

    async def run(
        self,
        start_event: StartEvent | None = None,
        ctx: Context[Any] | None = None,
        expose_internal: bool = True,
        exclude_events: list[type] | None = None,
        *,
        lifecycle: bool = False,
    ) -> WorkflowTestResult:
        """Run the workflow to its end and return what it streamed.

        ``start_event`` defaults to the workflow's start event with no fields; ``ctx`` continues
        an earlier run's context. ``expose_internal`` includes the ``StepStateChanged`` events
        llama-index-workflows streams there; ``lifecycle=True`` this engine's own records
        (``StepStarted``, ``StepFinished``, ``StepFailed``, ``RunStatusChanged``).
        ``exclude_events`` leaves out items of exactly those types. A run that fails raises
        its error here, as ``await handler`` does.
        """
        if start_event is None:
            handler = self._workflow.run(ctx)
        else:
            handler = self._workflow.run(ctx, start_event=start_event)
        excluded = tuple(exclude_events or ())
        collected: list[Any] = []
        stream = handler.stream_events(expose_internal=expose_internal, lifecycle=lifecycle)
        async for item in stream:
            if type(item) not in excluded:
                collected.append(item)
        result = await handler
        counts = Counter(type(item) for item in collected)
        return WorkflowTestResult(collected, dict(counts), result, handler.ctx)


__all__ = ["WorkflowTestResult", "WorkflowTestRunner"]
