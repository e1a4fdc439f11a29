"""Retry policies: whether a failed step runs again, and after how long.

A policy is any object with ``next(elapsed_time, attempts, error)`` returning the seconds to wait
before the next attempt, or ``None`` to give up (``RetryPolicy``). This module holds the names
llama-index-workflows 2.26 has in ``workflows.retry_policy``, with the same parameters, defaults
and formulas, so a policy written for it ports by changing the import line:

* ``retry_policy(retry=..., wait=..., stop=...)`` composes three small parts: a *retry* condition
  (is this error worth another try?), a *wait* strategy (how long before it?) and a *stop*
  condition (when to give up?). Conditions combine with ``|`` and ``&``, waits with ``+``.
* ``ConstantDelayRetryPolicy`` and ``ExponentialBackoffRetryPolicy`` are the two ready-made
  policies. The peer deprecated them in favour of ``retry_policy``; here they stay first-class
  (they are this project's own API), as frozen dataclasses, so they compare, print and pickle.

Counting, as in the peer: ``attempts`` is the number of failures so far (1 after the first one);
wait strategies count retries from 0, so the first retry waits ``wait(0)``. With
``stop_after_attempt(3)`` a step runs at most three times.

``RetryInfo`` is what ``ctx.retry_info()`` returns inside a step: plain data the runtime fills.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

TimeUnit = int | float | timedelta


def _seconds(value: TimeUnit) -> float:
    return float(value.total_seconds() if isinstance(value, timedelta) else value)


def _uniform(low: float, high: float, seed: int | None) -> float:
    # A seed makes jitter repeatable (a replayed run waits what the original waited).
    return random.Random(seed).uniform(low, high) if seed is not None else random.uniform(low, high)


@dataclass(frozen=True)
class RetryInfo:
    """Where the running step stands in its retries; ``ctx.retry_info()`` returns it.

    ``retry_number`` is 0 on the first attempt, 1 on the first retry, and so on;
    ``elapsed_seconds`` the seconds since the first attempt began (0.0 on the first);
    ``last_exception`` what the previous attempt raised and ``last_failed_at`` when (a
    timezone-aware UTC datetime), both ``None`` on the first attempt.
    """

    retry_number: int = 0
    elapsed_seconds: float = 0.0
    last_exception: Exception | None = None
    last_failed_at: datetime | None = None


@runtime_checkable
class RetryPolicy(Protocol):
    """Decides whether a failed step runs again.

    ``elapsed_time`` is the seconds since the first attempt started, ``attempts`` the number of
    failures so far (1 after the first), ``error`` what the last attempt raised. Return the
    seconds to wait before the next attempt, or ``None`` to stop. The policies in this module
    also take a keyword ``seed`` that makes their jitter repeatable; the runtime need not pass it.
    """

    def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None: ...


class RetryCondition(Protocol):
    """``condition(error) -> bool``: is this error worth another attempt?"""

    def __call__(self, error: BaseException) -> bool: ...


class WaitStrategy(Protocol):
    """``wait(retry, seed=None) -> seconds``; ``retry`` counts from 0 for the first retry."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float: ...


class StopCondition(Protocol):
    """``stop(attempts, elapsed_time, upcoming_sleep=0.0) -> bool``: give up now?"""

    def __call__(
        self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0
    ) -> bool: ...


# -- retry conditions -------------------------------------------------------------------------


class _Condition:
    """Base of the retry conditions: ``a | b`` retries if either does, ``a & b`` if both do."""

    def __call__(self, error: BaseException) -> bool:
        raise NotImplementedError

    def __or__(self, other: RetryCondition) -> retry_any:
        return retry_any(self, other)

    def __ror__(self, other: RetryCondition) -> retry_any:
        return retry_any(other, self)

    def __and__(self, other: RetryCondition) -> retry_all:
        return retry_all(self, other)

    def __rand__(self, other: RetryCondition) -> retry_all:
        return retry_all(other, self)


class retry_if_exception(_Condition):
    """Retry when ``predicate(error)`` is true."""

    def __init__(self, predicate: Callable[[BaseException], bool]) -> None:
        self.predicate = predicate

    def __call__(self, error: BaseException) -> bool:
        return bool(self.predicate(error))


ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


class retry_if_exception_type(_Condition):
    """Retry when the error is an instance of ``exception_types`` (a type or a tuple)."""

    def __init__(self, exception_types: ExceptionTypes = Exception) -> None:
        self.exception_types = exception_types

    def __call__(self, error: BaseException) -> bool:
        return isinstance(error, self.exception_types)


class retry_if_not_exception_type(retry_if_exception_type):
    """Retry unless the error is an instance of ``exception_types``."""

    def __call__(self, error: BaseException) -> bool:
        return not isinstance(error, self.exception_types)


class retry_unless_exception_type(retry_if_not_exception_type):
    """The same as ``retry_if_not_exception_type`` (tenacity's name)."""


class retry_if_exception_message(_Condition):
    """Retry when ``str(error)`` equals ``message``, or when the regex ``match`` is found in it
    (``re.search``). Give exactly one of the two."""

    def __init__(
        self, message: str | None = None, match: str | re.Pattern[str] | None = None
    ) -> None:
        if (message is None) == (match is None):
            raise TypeError(
                f"{type(self).__name__}() takes either message= (the exact text) or match= "
                f"(a regular expression), and exactly one of them"
            )
        self.message = message
        self.match = match
        self._pattern = re.compile(match) if isinstance(match, str) else match

    def _matches(self, error: BaseException) -> bool:
        text = str(error)
        if self.message is not None:
            return text == self.message
        assert self._pattern is not None
        return self._pattern.search(text) is not None

    def __call__(self, error: BaseException) -> bool:
        return self._matches(error)


class retry_if_not_exception_message(retry_if_exception_message):
    """Retry unless the error's message matches (``message`` exactly, or the regex ``match``)."""

    def __call__(self, error: BaseException) -> bool:
        return not self._matches(error)


class retry_if_exception_cause_type(_Condition):
    """Retry when an exception in the error's ``__cause__`` chain (``raise X from Y``) is an
    instance of ``exception_types``. The error itself and implicit ``__context__`` links are
    not looked at, as in tenacity."""

    def __init__(self, exception_types: ExceptionTypes = Exception) -> None:
        self.exception_types = exception_types

    def __call__(self, error: BaseException) -> bool:
        cause = error.__cause__
        seen: set[int] = set()
        while cause is not None and id(cause) not in seen:
            if isinstance(cause, self.exception_types):
                return True
            seen.add(id(cause))
            cause = cause.__cause__
        return False


class retry_any(_Condition):
    """Retry when any of the conditions says so (what ``a | b`` builds)."""

    def __init__(self, *retries: RetryCondition) -> None:
        self.retries = retries

    def __call__(self, error: BaseException) -> bool:
        return any(r(error) for r in self.retries)


class retry_all(_Condition):
    """Retry when every condition says so (what ``a & b`` builds)."""

    def __init__(self, *retries: RetryCondition) -> None:
        self.retries = retries

    def __call__(self, error: BaseException) -> bool:
        return all(r(error) for r in self.retries)


class retry_always(_Condition):
    """Retry on any error."""

    def __call__(self, error: BaseException) -> bool:
        return True


class retry_never(_Condition):
    """Never retry."""

    def __call__(self, error: BaseException) -> bool:
        return False


# -- wait strategies --------------------------------------------------------------------------


class _Wait:
    """Base of the wait strategies: ``a + b`` (and ``sum([...])``) waits for both in turn."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        raise NotImplementedError

    def __add__(self, other: WaitStrategy) -> wait_combine:
        return wait_combine(self, other)

    def __radd__(self, other: object) -> object:
        if other == 0:  # sum() starts from 0
            return self
        if callable(other):
            return wait_combine(other, self)  # type: ignore[arg-type]
        return NotImplemented


class wait_fixed(_Wait):
    """Wait ``wait`` seconds (a number or a ``timedelta``) before every retry."""

    def __init__(self, wait: TimeUnit) -> None:
        self.wait = _seconds(wait)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return self.wait


class wait_none(wait_fixed):
    """Retry at once."""

    def __init__(self) -> None:
        super().__init__(0)


class wait_exponential(_Wait):
    """Wait ``multiplier * exp_base ** n`` seconds before retry ``n`` (0 for the first retry),
    kept between ``min`` and ``max``."""

    def __init__(
        self,
        multiplier: float = 1.0,
        exp_base: float = 2.0,
        max: TimeUnit = 60.0,
        min: TimeUnit = 0.0,
    ) -> None:
        self.multiplier = float(multiplier)
        self.exp_base = float(exp_base)
        self.max = _seconds(max)
        self.min = _seconds(min)

    def _bound(self, attempts: int) -> float:
        try:
            grown = self.multiplier * self.exp_base**attempts
        except OverflowError:
            grown = float("inf")
        return max(0.0, self.min, min(grown, self.max))

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return self._bound(attempts)


class wait_random_exponential(wait_exponential):
    """Full jitter: a random wait between ``min`` and what ``wait_exponential`` would wait."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return _uniform(self.min, self._bound(attempts), seed)


def wait_full_jitter(
    multiplier: float = 1.0,
    exp_base: float = 2.0,
    max: TimeUnit = 60.0,
    min: TimeUnit = 0.0,
) -> wait_random_exponential:
    """Another name for ``wait_random_exponential``."""
    return wait_random_exponential(multiplier=multiplier, exp_base=exp_base, max=max, min=min)


class wait_exponential_jitter(_Wait):
    """``initial * exp_base ** n`` capped at ``max``, plus a random ``0..jitter`` seconds, the
    sum capped at ``max`` again."""

    def __init__(
        self, initial: float = 1.0, exp_base: float = 2.0, max: float = 60.0, jitter: float = 1.0
    ) -> None:
        self.initial = initial
        self.exp_base = exp_base
        self.max = max
        self.jitter = jitter

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        try:
            grown = self.initial * self.exp_base**attempts
        except OverflowError:
            grown = float("inf")
        base = grown if grown < self.max else self.max
        total = base + _uniform(0, self.jitter, seed)
        return total if total < self.max else self.max


class wait_incrementing(_Wait):
    """Wait ``start + increment * n`` seconds before retry ``n``, capped at ``max``, never
    below 0."""

    def __init__(
        self, start: TimeUnit = 0.0, increment: TimeUnit = 100.0, max: TimeUnit = float("inf")
    ) -> None:
        self.start = _seconds(start)
        self.increment = _seconds(increment)
        self.max = _seconds(max)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        value = self.start + self.increment * attempts
        return 0.0 if value < 0 else (value if value < self.max else self.max)


class wait_random(_Wait):
    """Wait a random number of seconds between ``min`` and ``max``."""

    def __init__(self, min: TimeUnit = 0.0, max: TimeUnit = 1.0) -> None:
        self.min = _seconds(min)
        self.max = _seconds(max)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return _uniform(self.min, self.max, seed)


class wait_chain(_Wait):
    """The first strategy for the first retry, the second for the second, ...; the last one for
    every retry after that."""

    def __init__(self, *strategies: WaitStrategy) -> None:
        if not strategies:
            raise ValueError("wait_chain needs at least one wait strategy")
        self.strategies = strategies

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        chosen = self.strategies[min(attempts, len(self.strategies) - 1)]
        return chosen(attempts, seed=seed)


class wait_combine(_Wait):
    """The sum of the strategies' waits (what ``a + b`` builds)."""

    def __init__(self, *strategies: WaitStrategy) -> None:
        self.strategies = strategies

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return sum(s(attempts, seed=seed) for s in self.strategies)


# -- stop conditions --------------------------------------------------------------------------


class _Stop:
    """Base of the stop conditions: ``a | b`` stops when either does, ``a & b`` when both do."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        raise NotImplementedError

    def __or__(self, other: StopCondition) -> stop_any:
        return stop_any(self, other)

    def __ror__(self, other: StopCondition) -> stop_any:
        return stop_any(other, self)

    def __and__(self, other: StopCondition) -> stop_all:
        return stop_all(self, other)

    def __rand__(self, other: StopCondition) -> stop_all:
        return stop_all(other, self)


class stop_after_attempt(_Stop):
    """Give up once ``max_attempt_number`` attempts have failed (so the step runs at most that
    many times)."""

    def __init__(self, max_attempt_number: int) -> None:
        self.max_attempt_number = max_attempt_number

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return attempts >= self.max_attempt_number


class stop_after_delay(_Stop):
    """Give up once ``max_delay`` seconds have passed since the first attempt."""

    def __init__(self, max_delay: TimeUnit) -> None:
        self.max_delay = _seconds(max_delay)

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return elapsed_time >= self.max_delay


class stop_before_delay(_Stop):
    """Give up when the coming wait would take the step past ``max_delay`` seconds."""

    def __init__(self, max_delay: TimeUnit) -> None:
        self.max_delay = _seconds(max_delay)

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return elapsed_time + upcoming_sleep >= self.max_delay


class stop_any(_Stop):
    """Give up when any of the conditions says so (what ``a | b`` builds)."""

    def __init__(self, *stops: StopCondition) -> None:
        self.stops = stops

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return any(s(attempts, elapsed_time, upcoming_sleep=upcoming_sleep) for s in self.stops)


class stop_all(_Stop):
    """Give up when every condition says so (what ``a & b`` builds)."""

    def __init__(self, *stops: StopCondition) -> None:
        self.stops = stops

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return all(s(attempts, elapsed_time, upcoming_sleep=upcoming_sleep) for s in self.stops)


class stop_never(_Stop):
    """Never give up (pair it with a retry condition, or rely on the run's timeout)."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return False


# -- policies ---------------------------------------------------------------------------------


class _ComposedRetryPolicy:
    """A policy built by ``retry_policy``: first *retry* (is the error retryable?), then *wait*
    (the delay for this retry), then *stop* (told the coming delay, may give up)."""

    def __init__(
        self,
        retry: RetryCondition | None = None,
        wait: WaitStrategy | None = None,
        stop: StopCondition | None = None,
    ) -> None:
        self.retry = retry
        self.wait: WaitStrategy = wait if wait is not None else wait_fixed(5)
        self.stop: StopCondition = stop if stop is not None else stop_after_attempt(3)

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        if self.retry is not None and not self.retry(error):
            return None
        delay = self.wait(max(attempts - 1, 0), seed=seed)
        if self.stop(attempts, elapsed_time, upcoming_sleep=delay):
            return None
        return delay

    def __repr__(self) -> str:
        return f"retry_policy(retry={self.retry!r}, wait={self.wait!r}, stop={self.stop!r})"


def retry_policy(
    retry: RetryCondition | None = None,
    wait: WaitStrategy | None = None,
    stop: StopCondition | None = None,
) -> RetryPolicy:
    """A policy from a retry condition, a wait strategy and a stop condition::

        retry_policy(
            retry=retry_if_exception_type((TimeoutError, ConnectionError)),
            wait=wait_exponential(multiplier=1, max=30),
            stop=stop_after_attempt(5),
        )

    Left out, ``retry`` retries every exception, ``wait`` is ``wait_fixed(5)`` and ``stop`` is
    ``stop_after_attempt(3)``: three attempts in all, five seconds apart.
    """
    return _ComposedRetryPolicy(retry=retry, wait=wait, stop=stop)


@dataclass(frozen=True)
class ConstantDelayRetryPolicy:
    """Retry ``delay`` seconds after each failure, up to ``maximum_attempts`` attempts in all.

    The same as ``retry_policy(wait=wait_fixed(delay), stop=stop_after_attempt(n))``.
    ``retry_on`` (this project's addition) limits the retries to those exception types.
    """

    maximum_attempts: int = 3
    delay: float = 5
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        if attempts >= self.maximum_attempts or not isinstance(error, self.retry_on):
            return None
        return self.delay


@dataclass(frozen=True)
class ExponentialBackoffRetryPolicy:
    """Retry after ``initial_delay * multiplier ** (attempts - 1)`` seconds, capped at
    ``max_delay``, up to ``maximum_attempts`` attempts in all: 1, 2, 4, 8 ... with the defaults.

    With ``jitter`` (the default, as in llama-index-workflows) each delay is drawn uniformly
    between 0 and that value ("full jitter"), so many runs failing together do not retry in
    lockstep; ``jitter=False`` waits exactly. ``retry_on`` (this project's addition) limits the
    retries to those exception types.
    """

    maximum_attempts: int = 5
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        if attempts >= self.maximum_attempts or not isinstance(error, self.retry_on):
            return None
        wait = (wait_random_exponential if self.jitter else wait_exponential)(
            multiplier=self.initial_delay, exp_base=self.multiplier, max=self.max_delay
        )
        return wait(max(attempts - 1, 0), seed=seed)


def describe(policy: RetryPolicy | None) -> str:
    """A short human description of a policy (graphs and monitors show it)."""
    if policy is None:
        return ""
    attempts = getattr(policy, "maximum_attempts", None)
    stop = getattr(policy, "stop", None)
    if attempts is None and isinstance(stop, stop_after_attempt):
        attempts = stop.max_attempt_number
    return f"retries: {attempts - 1}" if isinstance(attempts, int) else "retries"


__all__ = [
    "ConstantDelayRetryPolicy",
    "ExponentialBackoffRetryPolicy",
    "RetryCondition",
    "RetryInfo",
    "RetryPolicy",
    "StopCondition",
    "WaitStrategy",
    "describe",
    "retry_all",
    "retry_always",
    "retry_any",
    "retry_if_exception",
    "retry_if_exception_cause_type",
    "retry_if_exception_message",
    "retry_if_exception_type",
    "retry_if_not_exception_message",
    "retry_if_not_exception_type",
    "retry_never",
    "retry_policy",
    "retry_unless_exception_type",
    "stop_after_attempt",
    "stop_after_delay",
    "stop_all",
    "stop_any",
    "stop_before_delay",
    "stop_never",
    "wait_chain",
    "wait_combine",
    "wait_exponential",
    "wait_exponential_jitter",
    "wait_fixed",
    "wait_full_jitter",
    "wait_incrementing",
    "wait_none",
    "wait_random",
    "wait_random_exponential",
]
