"""A failing step fails the run with the user's own exception, after its retries."""

from __future__ import annotations

import asyncio
import threading
import traceback

import pytest

from notebook_workflows import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    ExponentialBackoffRetryPolicy,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailed,
    StopEvent,
    Workflow,
    WorkflowTimeoutError,
    step,
)


class Parsed(Event):
    pass


class Broken(Workflow):
    @step
    async def parse(self, ev: StartEvent) -> Parsed:
        raise ValueError("bad input line 3")

    @step
    async def end(self, ev: Parsed) -> StopEvent:
        return StopEvent()


async def test_the_users_exception_comes_out_of_await_with_the_step_named() -> None:
    handler = Broken().run(run_id="r1")
    with pytest.raises(ValueError, match="bad input line 3") as info:
        await handler
    assert "in step 'parse' of Broken (run 'r1')" in info.value.__notes__[0]
    assert handler.status == "failed"


async def test_the_traceback_starts_at_the_users_step() -> None:
    try:
        await Broken().run()
    except ValueError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
    internal = [f for f in frames if "notebook_workflows" in f.filename]
    assert frames[-1].name == "parse"
    assert len(internal) <= 1, [f.name for f in internal]


async def test_sync_steps_fail_the_same_way() -> None:
    class SyncBroken(Workflow):
        @step
        def parse(self, ev: StartEvent) -> StopEvent:
            raise KeyError("missing column")

    with pytest.raises(KeyError, match="missing column") as info:
        await SyncBroken().run()
    assert "in step 'parse'" in info.value.__notes__[0]


class Flaky(Workflow):
    def __init__(self, failures: int, policy: object) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0
        self.policy = policy

    @step(retry_policy=ConstantDelayRetryPolicy(delay=0.001, maximum_attempts=3))
    async def call(self, ev: StartEvent) -> StopEvent:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls}")
        return StopEvent(result=self.calls)


async def test_a_retried_step_succeeds_within_its_attempts() -> None:
    flaky = Flaky(failures=2, policy=None)
    handler = flaky.run()
    stream = handler.stream_events(lifecycle=True)
    failures = [i async for i in stream if isinstance(i, StepFailed)]
    assert await handler == 3
    assert [f.will_retry for f in failures] == [True, True]


async def test_a_step_failing_after_its_retries_fails_the_run() -> None:
    flaky = Flaky(failures=5, policy=None)
    with pytest.raises(ConnectionError, match="attempt 3") as info:
        await flaky.run()
    assert flaky.calls == 3
    assert "attempt 3" in info.value.__notes__[0]


def test_exponential_backoff_grows_and_stops() -> None:
    policy = ExponentialBackoffRetryPolicy(
        initial_delay=1, multiplier=2, max_delay=5, maximum_attempts=4, jitter=False
    )
    delays = [policy.next(0, attempt, RuntimeError()) for attempt in range(1, 5)]
    assert delays == [1, 2, 4, None]
    capped = ExponentialBackoffRetryPolicy(
        initial_delay=1, max_delay=3, maximum_attempts=9, jitter=False
    )
    assert capped.next(0, 5, RuntimeError()) == 3


def test_retry_on_limits_which_errors_retry() -> None:
    policy = ConstantDelayRetryPolicy(delay=1, retry_on=(ConnectionError,))
    assert policy.next(0, 1, ConnectionError()) == 1
    assert policy.next(0, 1, ValueError()) is None


async def test_a_step_timeout_fails_the_step() -> None:
    class Sleepy(Workflow):
        @step(timeout=0.05)
        async def nap(self, ev: StartEvent) -> StopEvent:
            await asyncio.Event().wait()  # never returns: only the timeout ends the run
            return StopEvent()

    with pytest.raises(WorkflowTimeoutError, match="step 'nap' took longer than its timeout"):
        await Sleepy().run()


async def test_a_sync_step_timeout_fails_the_run_without_waiting_for_the_thread() -> None:
    release, returned = threading.Event(), threading.Event()

    class Sleepy(Workflow):
        @step(timeout=0.05)
        def nap(self, ev: StartEvent) -> StopEvent:
            release.wait(30)
            returned.set()
            return StopEvent()

    with pytest.raises(WorkflowTimeoutError, match="step 'nap'"):
        await Sleepy().run()
    assert not returned.is_set()  # the run failed while the step's thread was still blocked
    release.set()
    assert await asyncio.to_thread(returned.wait, 20)


async def test_the_run_timeout_covers_the_whole_run() -> None:
    class Sleepy(Workflow):
        @step
        async def nap(self, ev: StartEvent) -> StopEvent:
            await asyncio.sleep(5)
            return StopEvent()

    with pytest.raises(WorkflowTimeoutError, match="took longer than its timeout of 0.1 s"):
        await Sleepy(timeout=0.1).run()


async def test_time_waiting_for_a_human_does_not_count_against_the_timeout() -> None:
    class Ask(Workflow):
        @step
        async def ask(self, ctx: Context, ev: StartEvent) -> StopEvent:
            answer = await ctx.wait_for_event(
                HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="ok?")
            )
            return StopEvent(result=answer.response)

    handler = Ask(timeout=0.1).run()
    await asyncio.sleep(0.3)  # the human takes three times the timeout to answer
    assert handler.status == "waiting"
    handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert await handler == "yes"


async def test_there_is_no_default_timeout() -> None:
    assert Broken().timeout is None
