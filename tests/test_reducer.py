"""The reducer on its own: transitions in, commands and state out, with no event loop at all.

Every decision of a run (routing, stepping, retries, timeouts, waiting, the stop, the stall)
is a function of the state and one transition; these tests fold transitions by hand and read
the commands, the way the asyncio driver would, but without running anything.
"""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import started, started_state

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    WorkflowTimeoutError,
    step,
)
from notebook_workflows.runtime import commands as C
from notebook_workflows.runtime import transitions as T
from notebook_workflows.runtime.reducer import reduce
from notebook_workflows.runtime.state import RunState, Waiter


class Half(Event):
    n: int


class Pipe(Workflow):
    @step
    async def begin(self, ev: StartEvent) -> Half:
        raise NotImplementedError  # never called: the tests play the steps' part

    @step(retry_policy=ConstantDelayRetryPolicy(delay=2, maximum_attempts=3), timeout=10)
    async def end(self, ev: Half) -> StopEvent | None:
        raise NotImplementedError


def fresh(*, stepwise: bool = False, timeout: float | None = None, **fields: Any) -> RunState:
    state = started_state(Pipe, **fields)
    state.stepwise = stepwise
    state.timeout = timeout
    return state


def kinds(commands: list[Any]) -> list[str]:
    return [type(c).__name__ for c in commands]


def test_a_run_starts_with_its_start_event_and_ends_with_the_stop() -> None:
    state = fresh(n=3)
    out = reduce(state, T.RunStarted(), now=100.0)
    [begin] = started(out)
    assert (begin.step, begin.event.n, state.status) == ("begin", 3, "running")
    out = reduce(state, T.InvocationReturned(begin, 1, Half(n=6)), now=100.5)
    [end] = started(out)
    assert (end.step, end.event) == ("end", Half(n=6))
    assert state.step_seconds["begin"] == 0.5 and state.steps_done == 1
    out = reduce(state, T.InvocationReturned(end, 1, StopEvent(result=6)), now=101.0)
    assert kinds(out) == ["CancelTimer", "Publish", "FinishRun"]
    finish = out[-1]
    assert (finish.status, finish.result, state.status) == ("done", 6, "done")
    assert not state.in_flight and not state.queued


def test_the_stop_goes_to_the_stream_before_the_status_record() -> None:
    state = fresh(n=1)
    state.observed = True
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    [end] = started(reduce(state, T.InvocationReturned(begin, 1, Half(n=2)), now=0))
    out = reduce(state, T.InvocationReturned(end, 1, StopEvent(result=2)), now=0)
    published = [c.item for c in out if isinstance(c, C.Publish)]
    assert [type(p).__name__ for p in published] == [
        "StepFinished",
        "StopEvent",
        "RunStatusChanged",
    ]


def test_a_checkpointed_run_writes_after_each_step() -> None:
    state = fresh(n=1)
    state.checkpointed = True
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    out = reduce(state, T.InvocationReturned(begin, 1, Half(n=2)), now=0)
    assert C.WriteCheckpoint("step", "begin") in out


def test_stepping_takes_exactly_one_and_settles_with_what_it_produced() -> None:
    state = fresh(stepwise=True, n=1)
    assert started(reduce(state, T.RunStarted(), now=0)) == []
    out = reduce(state, T.StepRequested(), now=0)
    [begin] = started(out)
    assert state.stepping == (begin.id, 0)
    out = reduce(state, T.InvocationReturned(begin, 1, Half(n=2)), now=0)
    assert started(out) == []  # the next step waits for the next step() call
    [settled] = [c for c in out if isinstance(c, C.Settled)]
    assert settled.produced == (Half(n=2),)
    assert state.queued == 1 and state.stepping is None


def test_a_step_requested_of_a_free_run_is_refused() -> None:
    state = fresh(n=1)
    reduce(state, T.RunStarted(), now=0)
    [reply] = reduce(state, T.StepRequested(), now=0)
    assert isinstance(reply.error, WorkflowRuntimeError) and "stepwise=True" in str(reply.error)


def test_a_failed_attempt_is_retried_after_its_policy_delay() -> None:
    state = fresh(n=1)
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    [end] = started(reduce(state, T.InvocationReturned(begin, 1, Half(n=2)), now=0))
    error = ValueError("flaky")
    out = reduce(state, T.InvocationFailed(end, 1, error), now=1)
    assert out == [C.AskRetryPolicy(end.id, "end", 1, error, 1.0)]  # the policy is user code
    out = reduce(state, T.RetryDecided(end.id, 1, 2.0), now=1)
    assert C.ScheduleTimer(("retry", end.id), 2) in out
    assert end.attempt == 2 and state.status == "running"
    out = reduce(state, T.TimerFired(("retry", end.id)), now=3)
    assert started(out) == [end]
    # a late report of the first attempt is ignored
    assert reduce(state, T.InvocationReturned(end, 1, None), now=3) == []


def test_a_step_past_its_timeout_is_cancelled_and_fails_as_a_timeout() -> None:
    state = fresh(n=1)
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    out = reduce(state, T.InvocationReturned(begin, 1, Half(n=2)), now=0)
    [end] = started(out)
    assert C.ScheduleTimer(("step", end.id, 1), 10) in out
    out = reduce(state, T.TimerFired(("step", end.id, 1)), now=10)
    assert out == [C.CancelInvocation(end)]
    [ask] = reduce(state, T.InvocationCancelled(end, 1), now=10)
    assert isinstance(ask.error, WorkflowTimeoutError)  # an error its retry policy sees
    out = reduce(state, T.RetryDecided(end.id, 1, 2.0), now=10)
    assert kinds(out)[-1] == "ScheduleTimer"
    assert end.attempt == 2


def test_cancelled_error_raised_by_a_step_is_that_step_failing() -> None:
    state = fresh(n=1)
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    out = reduce(state, T.InvocationFailed(begin, 1, asyncio.CancelledError()), now=0)
    finish = out[-1]
    assert isinstance(finish, C.FinishRun) and finish.status == "failed"
    assert isinstance(finish.error, asyncio.CancelledError)
    assert "raised CancelledError" in str(finish.error)
    assert state.in_flight[begin.id] is begin  # kept with its input: resume tries it again


def test_a_run_with_nothing_left_to_do_and_no_stop_waits_saying_it_stalled() -> None:
    state = fresh(n=1)
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    [end] = started(reduce(state, T.InvocationReturned(begin, 1, Half(n=2)), now=0))
    out = reduce(state, T.InvocationReturned(end, 1, None), now=0)
    assert not any(isinstance(c, C.FinishRun) for c in out)
    assert state.status == "running" and "no event is queued" in state.stalled
    out = reduce(state, T.EventSent(Half(n=3)), now=1)  # from outside: it goes on
    assert [inv.step for inv in started(out)] == ["end"] and state.stalled == ""


def test_a_question_makes_the_run_wait_and_its_answer_resumes_it() -> None:
    state = fresh(n=1, timeout=60)
    state.checkpointed = True
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    question = InputRequiredEvent(prefix="ok?")
    waiter = Waiter(begin.id, 0, (HumanResponseEvent,), {}, question)
    out = reduce(state, T.WaitStarted(begin, waiter), now=5)
    assert C.Publish(question, stream=True) in out
    assert state.status == "waiting" and C.WriteCheckpoint("status") in out
    assert C.CancelTimer(("run",)) in out and state.budget == 55  # waiting never counts
    answer = HumanResponseEvent(response="yes")
    out = reduce(state, T.EventSent(answer), now=100)
    assert C.ResolveWaiter(waiter, answer) in out and state.status == "running"
    assert C.ScheduleTimer(("run",), 55) in out


def test_a_cancel_keeps_what_was_running_in_flight() -> None:
    state = fresh(n=1)
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    out = reduce(state, T.CancelRequested("by a test"), now=0)
    assert kinds(out) == ["FinishRun"]
    assert state.status == "cancelled" and state.detail == "by a test"
    assert list(state.in_flight) == [begin.id]


def test_the_run_timeout_fails_the_run_naming_what_still_runs() -> None:
    state = fresh(n=1, timeout=5)
    out = reduce(state, T.RunStarted(), now=0)
    assert C.ScheduleTimer(("run",), 5) in out
    out = reduce(state, T.TimerFired(("run",)), now=5)
    finish = out[-1]
    assert isinstance(finish.error, WorkflowTimeoutError)
    assert "still running: begin" in str(finish.error)


def test_collect_answers_none_until_every_expected_event_arrived() -> None:
    state = fresh(n=1)
    [begin] = started(reduce(state, T.RunStarted(), now=0))
    expected = [Half, Half]
    [reply] = reduce(state, T.CollectRequested(begin, Half(n=1), expected), now=0)
    assert reply == C.Reply(None)
    [reply] = reduce(state, T.CollectRequested(begin, Half(n=2), expected), now=0)
    assert reply.value == [Half(n=1), Half(n=2)]


def test_the_same_transitions_give_the_same_commands() -> None:
    def play() -> list[str]:
        state = fresh(n=1)
        log = kinds(reduce(state, T.RunStarted(), now=0))
        [begin] = state.in_flight.values()
        log += kinds(reduce(state, T.InvocationReturned(begin, 1, Half(n=2)), now=1))
        [end] = state.in_flight.values()
        log += kinds(reduce(state, T.InvocationFailed(end, 1, KeyError("x")), now=2))
        log += kinds(reduce(state, T.RetryDecided(end.id, 1, 2.0), now=2))
        log += kinds(reduce(state, T.TimerFired(("retry", end.id)), now=4))
        log += kinds(reduce(state, T.InvocationReturned(end, 2, StopEvent()), now=5))
        return log

    assert play() == play()
