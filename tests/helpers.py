"""Helpers the test files share: waiting for something to happen instead of sleeping for it,
reading the words of a widget's HTML, and a run state for the reducer tests.

A test that waits polls the thing itself with a deadline (``until``, ``wait_until``): it goes on
the moment the thing happens, and on a loaded machine it waits longer instead of failing. The
deadline is only there to turn a hang into a failure that says what did not happen.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable
from typing import Any

from notebook_workflows import StartEvent, Workflow
from notebook_workflows.runtime import commands as C
from notebook_workflows.runtime import routing
from notebook_workflows.runtime.state import RunState

POLL = 0.002  # how often a wait looks again, in seconds
DEADLINE = 20.0  # how long a wait may take before it fails: generous, for a loaded machine


async def until(
    condition: Callable[[], Any], timeout: float = DEADLINE, what: str = "the condition"
) -> None:
    """Wait, letting the event loop run, until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(POLL)


def wait_until(
    condition: Callable[[], Any], timeout: float = DEADLINE, what: str = "the condition"
) -> None:
    """Wait, blocking this thread, until ``condition()`` is true (the run is on another
    thread or in another process)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(POLL)


async def waiting(handler: Any, timeout: float = DEADLINE) -> None:
    """Wait until the run is paused for a human."""
    await until(lambda: handler.status == "waiting", timeout, f"run {handler.run_id} waiting")


async def result_of(handler: Any, timeout: float = DEADLINE) -> Any:
    """The run's result, once it has finished (for a handler this loop does not await)."""
    await until(handler.done, timeout, f"the end of run {handler.run_id}")
    return handler.result()


def text(markup: str) -> str:
    """The visible text of an HTML snippet, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def words(markup: str) -> str:
    """The visible text of an HTML snippet with its white space folded to single spaces."""
    return " ".join(text(markup).split())


def started_state(flow: type[Workflow], **fields: Any) -> RunState:
    """A reducer's ``RunState`` for ``flow`` (run ``run-1``) with its start event routed."""
    state = RunState(flow._step_specs(), "run-1", flow.__name__)
    state.start_event = StartEvent(**fields)
    routing.route(state, state.start_event)
    return state


def started(commands: list[Any]) -> list[Any]:
    """The invocations a reducer's commands start."""
    return [c.inv for c in commands if isinstance(c, C.StartInvocation)]
