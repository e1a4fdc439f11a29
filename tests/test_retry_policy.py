"""Retry policies: the llama-index-workflows 2.26 names, parameters, defaults and formulas."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from notebook_workflows import StartEvent, StopEvent, Workflow, step
from notebook_workflows import retry as retry_module
from notebook_workflows.retry_policy import (
    ConstantDelayRetryPolicy,
    ExponentialBackoffRetryPolicy,
    RetryInfo,
    RetryPolicy,
    retry_all,
    retry_always,
    retry_any,
    retry_if_exception,
    retry_if_exception_cause_type,
    retry_if_exception_message,
    retry_if_exception_type,
    retry_if_not_exception_message,
    retry_if_not_exception_type,
    retry_never,
    retry_policy,
    retry_unless_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_all,
    stop_any,
    stop_before_delay,
    stop_never,
    wait_chain,
    wait_combine,
    wait_exponential,
    wait_exponential_jitter,
    wait_fixed,
    wait_full_jitter,
    wait_incrementing,
    wait_none,
    wait_random,
    wait_random_exponential,
)

ERR = RuntimeError("boom")


def delays(policy: RetryPolicy, failures: int) -> list[float | None]:
    return [policy.next(0.0, n, ERR) for n in range(1, failures + 1)]


# -- the two ready-made policies --------------------------------------------------------------


def test_exponential_backoff_first_retry_waits_the_initial_delay() -> None:
    policy = ExponentialBackoffRetryPolicy(jitter=False)
    assert delays(policy, 6) == [1.0, 2.0, 4.0, 8.0, None, None]


def test_exponential_backoff_has_the_peer_defaults_and_argument_order() -> None:
    policy = ExponentialBackoffRetryPolicy()
    assert (policy.maximum_attempts, policy.initial_delay, policy.multiplier) == (5, 1.0, 2.0)
    assert (policy.max_delay, policy.jitter) == (60.0, True)
    positional = ExponentialBackoffRetryPolicy(3, 0.5, 3.0, 2.0, False)
    assert delays(positional, 3) == [0.5, 1.5, None]  # 0.5, 1.5, then capped, but stopped


def test_exponential_backoff_is_capped_at_max_delay() -> None:
    policy = ExponentialBackoffRetryPolicy(maximum_attempts=20, max_delay=10, jitter=False)
    assert policy.next(0, 10, ERR) == 10


def test_exponential_jitter_is_full_jitter_and_repeatable_with_a_seed() -> None:
    policy = ExponentialBackoffRetryPolicy(maximum_attempts=10)
    drawn = [policy.next(0, 4, ERR) for _ in range(200)]
    assert all(d is not None and 0.0 <= d <= 8.0 for d in drawn)
    assert len(set(drawn)) > 1
    assert policy.next(0, 4, ERR, seed=7) == policy.next(0, 4, ERR, seed=7)


def test_constant_delay_has_the_peer_defaults_and_argument_order() -> None:
    assert delays(ConstantDelayRetryPolicy(), 4) == [5, 5, None, None]
    assert delays(ConstantDelayRetryPolicy(2, 0.25), 2) == [0.25, None]


def test_retry_on_limits_the_ready_made_policies_to_some_errors() -> None:
    policy = ExponentialBackoffRetryPolicy(jitter=False, retry_on=(ConnectionError,))
    assert policy.next(0, 1, ConnectionError()) == 1.0
    assert policy.next(0, 1, ValueError()) is None


def test_ready_made_policies_are_frozen_values() -> None:
    policy = ConstantDelayRetryPolicy(delay=1)
    assert policy == ConstantDelayRetryPolicy(delay=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.delay = 2  # type: ignore[misc]


# -- retry_policy and its parts -----------------------------------------------------------------


def test_retry_policy_defaults_to_three_attempts_five_seconds_apart() -> None:
    assert delays(retry_policy(), 3) == [5.0, 5.0, None]


def test_retry_policy_asks_retry_then_wait_then_stop() -> None:
    policy = retry_policy(
        retry=retry_if_exception_type(ConnectionError),
        wait=wait_exponential(multiplier=2, exp_base=3),
        stop=stop_after_attempt(4),
    )
    assert [policy.next(0, n, ConnectionError()) for n in (1, 2, 3, 4)] == [2, 6, 18, None]
    assert policy.next(0, 1, ValueError()) is None


def test_stop_before_delay_is_told_the_coming_wait() -> None:
    policy = retry_policy(wait=wait_fixed(4), stop=stop_before_delay(10))
    assert policy.next(5.0, 1, ERR) == 4.0
    assert policy.next(6.0, 1, ERR) is None


def test_ready_made_and_composed_policies_satisfy_the_protocol() -> None:
    for policy in (retry_policy(), ConstantDelayRetryPolicy(), ExponentialBackoffRetryPolicy()):
        assert isinstance(policy, RetryPolicy)


def test_retry_conditions_by_type() -> None:
    assert retry_if_exception_type((KeyError, OSError))(ConnectionError())
    assert not retry_if_exception_type(KeyError)(ValueError())
    assert retry_if_not_exception_type(KeyError)(ValueError())
    assert not retry_unless_exception_type(ValueError)(ValueError())
    assert retry_if_exception(lambda e: "rate" in str(e))(RuntimeError("rate limit"))


def test_retry_conditions_by_message() -> None:
    assert retry_if_exception_message(message="try again")(RuntimeError("try again"))
    assert not retry_if_exception_message(message="try")(RuntimeError("try again"))
    assert retry_if_exception_message(match=r"HTTP 5\d\d")(RuntimeError("got HTTP 503 back"))
    assert not retry_if_not_exception_message(match="denied")(RuntimeError("access denied"))
    with pytest.raises(TypeError, match="exactly one"):
        retry_if_exception_message()
    with pytest.raises(TypeError, match="exactly one"):
        retry_if_exception_message(message="a", match="b")


def test_retry_on_cause_follows_explicit_chaining_only() -> None:
    try:
        try:
            raise ConnectionError("reset")
        except ConnectionError as inner:
            raise RuntimeError("fetch failed") from inner
    except RuntimeError as outer:
        chained = outer
    assert retry_if_exception_cause_type(ConnectionError)(chained)
    assert not retry_if_exception_cause_type(ConnectionError)(ConnectionError())
    implicit = RuntimeError("x")
    implicit.__context__ = ConnectionError()
    assert not retry_if_exception_cause_type(ConnectionError)(implicit)


def test_retry_conditions_combine_with_operators() -> None:
    either = retry_if_exception_type(KeyError) | retry_if_exception_message(match="temp")
    assert isinstance(either, retry_any)
    assert either(KeyError()) and either(RuntimeError("temporary")) and not either(ValueError())
    both = retry_if_exception_type(RuntimeError) & retry_if_exception_message(match="temp")
    assert isinstance(both, retry_all)
    assert both(RuntimeError("temp")) and not both(RuntimeError("fatal"))
    assert retry_always()(ValueError()) and not retry_never()(ValueError())
    assert (retry_never() | (lambda e: True))(ValueError())


def test_wait_strategies() -> None:
    assert wait_fixed(timedelta(seconds=2))(5) == 2.0
    assert wait_none()(3) == 0.0
    assert [wait_exponential(max=5, min=1.5)(n) for n in range(4)] == [1.5, 2.0, 4.0, 5.0]
    assert [wait_incrementing(start=1, increment=2, max=4)(n) for n in range(3)] == [1, 3, 4]
    assert all(0.5 <= wait_random(0.5, 1.5)(0) <= 1.5 for _ in range(100))
    assert all(0 <= wait_random_exponential(max=8)(5) <= 8 for _ in range(100))
    assert isinstance(wait_full_jitter(), wait_random_exponential)
    assert all(4 <= wait_exponential_jitter(max=60)(2) <= 5 for _ in range(100))
    assert wait_exponential_jitter(max=3)(5) == 3


def test_wait_chain_reuses_its_last_strategy() -> None:
    chain = wait_chain(wait_fixed(1), wait_fixed(2), wait_fixed(5))
    assert [chain(n) for n in range(5)] == [1, 2, 5, 5, 5]
    with pytest.raises(ValueError):
        wait_chain()


def test_waits_add_up() -> None:
    assert (wait_fixed(1) + wait_fixed(2))(0) == 3
    assert isinstance(wait_fixed(1) + wait_fixed(2), wait_combine)
    assert sum([wait_fixed(1), wait_fixed(2), wait_fixed(3)])(0) == 6  # type: ignore[operator]


def test_stop_conditions() -> None:
    assert stop_after_attempt(3)(3, 0) and not stop_after_attempt(3)(2, 0)
    assert stop_after_delay(timedelta(seconds=10))(1, 10.0)
    assert not stop_after_delay(10)(1, 9.0)
    assert not stop_never()(10**6, 10**6)
    either = stop_after_attempt(5) | stop_after_delay(10)
    assert isinstance(either, stop_any) and either(1, 11) and either(5, 0) and not either(1, 1)
    both = stop_after_attempt(5) & stop_after_delay(10)
    assert isinstance(both, stop_all) and both(5, 10) and not both(5, 1)


def test_retry_info_is_frozen_plain_data_starting_at_zero() -> None:
    info = RetryInfo()
    assert (info.retry_number, info.elapsed_seconds) == (0, 0.0)
    assert info.last_exception is None and info.last_failed_at is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.retry_number = 1  # type: ignore[misc]


def test_the_old_module_path_gives_the_same_objects() -> None:
    assert retry_module.retry_policy is retry_policy
    assert retry_module.ConstantDelayRetryPolicy is ConstantDelayRetryPolicy


# -- in a run -----------------------------------------------------------------------------------


class Flaky(Workflow):
    calls = 0

    @step(
        retry_policy=retry_policy(
            retry=retry_if_exception_type(ConnectionError),
            wait=wait_none(),
            stop=stop_after_attempt(3),
        )
    )
    async def fetch(self, ev: StartEvent) -> StopEvent:
        type(self).calls += 1
        if type(self).calls < ev.succeed_on:
            raise ConnectionError(f"attempt {type(self).calls}")
        return StopEvent(result=type(self).calls)


async def test_a_composed_policy_retries_a_step_until_it_succeeds() -> None:
    Flaky.calls = 0
    assert await Flaky().run(succeed_on=3) == 3


async def test_a_composed_policy_gives_up_after_its_stop_condition() -> None:
    Flaky.calls = 0
    with pytest.raises(ConnectionError, match="attempt 3"):
        await Flaky().run(succeed_on=10)
    assert Flaky.calls == 3
