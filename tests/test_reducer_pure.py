"""The reducer decides and calls nothing: no clock, no asyncio, no user code.

Time arrives with each transition (``reduce`` has no default for ``now``). A step's retry
policy and a step's ``cache_key`` are user code: folding transitions only asks for them
(``AskRetryPolicy``, ``AskCacheKey``); the driver calls them and hands their answers back as
transitions (``RetryDecided``, ``InputKeyed``). These tests read the reducer's modules, fold
transitions by hand with policies and key functions that count their calls, and run the same
workflows for real to see that the driver's answers give what the user always saw.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest
from helpers import started, started_state

from notebook_workflows import (
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowCancelledError,
    step,
)
from notebook_workflows.checkpoint import MemoryStore
from notebook_workflows.runtime import commands as C
from notebook_workflows.runtime import transitions as T
from notebook_workflows.runtime.reducer import reduce
from notebook_workflows.runtime.replay import Effects, ReplayTable, input_key
from notebook_workflows.snapshot import code_hash

RUNTIME = Path(__file__).parent.parent / "notebook_workflows" / "runtime"
# the reducer and its parts, and the vocabulary and data they work with
REDUCER_MODULES = (
    "reducer",
    "failures",
    "routing",
    "outcome",
    "joins",
    "stepping",
    "replay",
    "state",
    "transitions",
    "commands",
)
NOT_IMPORTED = {"asyncio", "time", "threading", "concurrent", "contextvars", "selectors"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}
DRIVER_SIDE = {"driver", "calls", "tasks", "view", "unrecorded"}


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    """Every module imported anywhere in ``tree`` (inside functions too), with its level."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
            if node.level == 1 and not node.module:  # from . import routing, outcome
                found += [(alias.name, 1) for alias in node.names]
    return found


@pytest.mark.parametrize("name", REDUCER_MODULES)
def test_the_reducer_modules_import_no_asyncio_no_clock_and_nothing_of_the_driver(
    name: str,
) -> None:
    tree = ast.parse((RUNTIME / f"{name}.py").read_text())
    for module, level in _imports(tree):
        top = module.split(".")[0]
        if level == 0:
            assert top not in NOT_IMPORTED, f"runtime/{name}.py imports {module}"
        elif level == 1:
            assert top not in DRIVER_SIDE, f"runtime/{name}.py imports .{module}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in CLOCK_CALLS, f"runtime/{name}.py reads a clock"


def test_reduce_requires_the_time_the_transition_happened_at() -> None:
    assert inspect.signature(reduce).parameters["now"].default is inspect.Parameter.empty
    state = started_state(Flaky)
    with pytest.raises(TypeError):
        unchecked: Any = reduce  # (a call mypy would refuse: the point of the test)
        unchecked(state, T.RunStarted())


# -- retry policies -------------------------------------------------------------------------------


class Counting:
    """A retry policy that records every call; retries once after ``delay`` seconds."""

    def __init__(self, delay: float = 3.0, broken: bool = False) -> None:
        self.calls: list[tuple[float, int, str]] = []
        self.delay = delay
        self.broken = broken

    def next(self, elapsed: float, attempts: int, error: Exception) -> float | None:
        self.calls.append((elapsed, attempts, str(error)))
        if self.broken:
            raise RuntimeError("policy bug")
        return self.delay if attempts < 2 else None

    def __repr__(self) -> str:
        return "<Counting>"


POLICY = Counting()
BROKEN = Counting(broken=True)
TRIES: list[int] = []


class Flaky(Workflow):
    @step(retry_policy=POLICY)
    async def begin(self, ev: StartEvent) -> StopEvent:
        TRIES.append(1)
        if len(TRIES) < 2:
            raise ValueError("flaky")
        return StopEvent(result=len(TRIES))


class Broken(Workflow):
    @step(retry_policy=BROKEN)
    async def begin(self, ev: StartEvent) -> StopEvent:
        raise ValueError("always")


def test_folding_a_failure_asks_the_policy_and_never_calls_it() -> None:
    POLICY.calls.clear()
    state = started_state(Flaky)
    [begin] = started(reduce(state, T.RunStarted(), now=10.0))
    error = ValueError("flaky")
    out = reduce(state, T.InvocationFailed(begin, 1, error), now=12.5)
    assert out == [C.AskRetryPolicy(begin.id, "begin", 1, error, 2.5)]
    assert state.status == "running" and begin.attempt == 1  # nothing decided yet
    out = reduce(state, T.RetryDecided(begin.id, 1, 3.0), now=12.5)
    assert C.ScheduleTimer(("retry", begin.id), 3.0) in out and begin.attempt == 2
    assert POLICY.calls == []


def test_a_policy_that_raised_comes_back_as_a_note_on_the_step_error() -> None:
    state = started_state(Broken)
    [begin] = started(reduce(state, T.RunStarted(), now=0.0))
    error = ValueError("always")
    reduce(state, T.InvocationFailed(begin, 1, error), now=1.0)
    note = "(its retry policy <Counting> raised RuntimeError('policy bug'), so it was not retried)"
    out = reduce(state, T.RetryDecided(begin.id, 1, None, note), now=1.0)
    assert out[0] == C.NoteError(error, note)  # before anyone hears of the failure
    assert isinstance(out[-1], C.FinishRun) and out[-1].error is error
    assert BROKEN.calls == [] and not hasattr(error, "__notes__")  # the driver adds it


def test_an_answer_nobody_waits_for_changes_nothing() -> None:
    state = started_state(Flaky)
    [begin] = started(reduce(state, T.RunStarted(), now=0.0))
    assert reduce(state, T.RetryDecided(begin.id, 1, 1.0), now=0.0) == []  # never asked
    reduce(state, T.InvocationFailed(begin, 1, ValueError("x")), now=1.0)
    reduce(state, T.CancelRequested("meanwhile"), now=1.0)
    assert reduce(state, T.RetryDecided(begin.id, 1, 1.0), now=1.0) == []
    assert begin.attempt == 1 and state.status == "cancelled" and not state.asked


async def test_the_driver_asks_the_policy_once_per_failure_with_what_it_always_got() -> None:
    POLICY.calls.clear()
    TRIES.clear()
    handler = Flaky().run()
    assert await handler == 2
    [(elapsed, attempts, message)] = POLICY.calls
    assert (attempts, message) == (1, "flaky") and 0 <= elapsed < 5


async def test_a_broken_policy_fails_the_run_with_the_step_error_saying_so() -> None:
    BROKEN.calls.clear()
    with pytest.raises(ValueError, match="always") as raised:
        await Broken().run()
    assert len(BROKEN.calls) == 1
    assert (
        "(its retry policy <Counting> raised RuntimeError('policy bug'), so it was not retried)"
        in raised.value.__notes__
    )


# -- cache keys -----------------------------------------------------------------------------------


KEYS: list[str] = []
FETCHED: list[str] = []


def lower_url(ev: Any) -> str:
    KEYS.append(ev.url)
    if ev.url == "bad":
        raise KeyError("no key for that")
    return ev.url.lower()


class Page(Event):
    text: str


class Fetch(Workflow):
    @step(cache=True, cache_key=lower_url)
    async def fetch(self, ev: StartEvent) -> Page:
        FETCHED.append(ev.url)
        return Page(text="page of " + ev.url.lower())

    @step
    async def use(self, ev: Page) -> StopEvent:
        return StopEvent(result=ev.text)


def fetch_recorded(url: str, effects: Effects) -> ReplayTable:
    codes = {name: code_hash(spec.fn) for name, spec in Fetch._step_specs().items()}
    table = ReplayTable(codes, cache_only=True)
    key = input_key(lambda ev: ev.url, StartEvent(url=url))  # as the recorder keyed it
    table.add("fetch", codes["fetch"], key, effects)
    return table


def test_folding_a_rerun_asks_the_cache_key_and_never_calls_it() -> None:
    KEYS.clear()
    state = started_state(Fetch, url="HTTP://X")
    state.replay = fetch_recorded("http://x", Effects(((Page(text="kept"), None),)))
    [ask] = reduce(state, T.RunStarted(), now=0.0)
    assert ask == C.AskCacheKey(1, "fetch", StartEvent(url="HTTP://X")) and KEYS == []
    key = input_key(lambda ev: ev.url.lower(), StartEvent(url="HTTP://X"))
    out = reduce(state, T.InputKeyed(ask.inv_id, key), now=0.0)
    [replay] = [c for c in out if isinstance(c, C.ReplayStep)]
    assert replay.effects.events == ((Page(text="kept"), None),) and started(out) == []
    assert KEYS == []


def test_a_key_that_could_not_be_made_starts_the_step_saying_why() -> None:
    state = started_state(Fetch, url="bad")
    state.replay = fetch_recorded("x", Effects())
    [ask] = reduce(state, T.RunStarted(), now=0.0)
    out = reduce(state, T.InputKeyed(ask.inv_id, None, "KeyError: 'no key'"), now=0.0)
    [inv] = started(out)
    assert inv.ran_because == "its input could not be keyed (KeyError: 'no key')"


async def test_the_driver_keys_the_input_once_and_a_recorded_call_is_reused() -> None:
    store = MemoryStore()
    assert await Fetch().run(url="HTTP://X", cache=store) == "page of http://x"
    FETCHED.clear()
    KEYS.clear()
    assert await Fetch().run(url="http://x", cache=store) == "page of http://x"
    assert FETCHED == [] and KEYS == ["http://x"]  # replayed: keyed once, by the driver


# -- the hot path -------------------------------------------------------------------------------


class Chain(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Page:
        raise NotImplementedError

    @step
    async def end(self, ev: Page) -> StopEvent:
        raise NotImplementedError


def test_a_step_with_no_policy_and_no_key_is_decided_without_a_question() -> None:
    state = started_state(Chain)
    [begin] = started(reduce(state, T.RunStarted(), now=0.0))
    [end] = started(reduce(state, T.InvocationReturned(begin, 1, Page(text="a")), now=0.0))
    out = reduce(state, T.InvocationFailed(end, 1, ValueError("no")), now=0.0)
    assert [type(c) for c in out] == [C.FinishRun] and not state.asked


# -- the driver's decisions, now the reducer's -------------------------------------------------


def test_the_reducer_writes_the_error_a_cancelled_run_raises() -> None:
    state = started_state(Chain)
    reduce(state, T.RunStarted(), now=0.0)
    out = reduce(state, T.CancelRequested("cancelled from the run monitor", by_user=True), 0.0)
    [finish] = out
    assert isinstance(finish.error, WorkflowCancelledByUser) and state.error is None
    assert str(finish.error) == "run 'run-1' of Chain was cancelled from the run monitor"
    state = started_state(Chain)
    reduce(state, T.RunStarted(), now=0.0)
    [finish] = reduce(state, T.CancelRequested("interrupted (KeyboardInterrupt)"), now=0.0)
    assert type(finish.error) is WorkflowCancelledError
    assert str(finish.error).endswith("was cancelled: interrupted (KeyboardInterrupt)")


def test_a_done_run_whose_end_was_not_saved_settles_as_failed_by_the_reducer() -> None:
    state = started_state(Chain)
    state.observed = True
    [begin] = started(reduce(state, T.RunStarted(), now=0.0))
    [end] = started(reduce(state, T.InvocationReturned(begin, 1, Page(text="a")), now=0.0))
    reduce(state, T.InvocationReturned(end, 1, StopEvent(result=1)), now=0.0)
    lost = OSError("disk full")
    out = reduce(state, T.EndNotSaved(lost), now=1.0)
    assert [type(c) for c in out] == [C.Publish, C.SettleRun]
    assert out[-1] == C.SettleRun("failed", lost) and state.status == "failed"


def test_a_cancelled_run_whose_end_was_not_saved_is_only_logged() -> None:
    state = started_state(Chain)
    reduce(state, T.RunStarted(), now=0.0)
    reduce(state, T.CancelRequested(), now=0.0)
    out = reduce(state, T.EndNotSaved(OSError("disk full")), now=1.0)
    assert out == [C.LogError("could not save the end of run run-1: disk full")]
    assert state.status == "cancelled"
