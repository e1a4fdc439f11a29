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

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .retry_waits import (
    TimeUnit,
    WaitStrategy,
    _seconds,
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


class StopCondition(Protocol):
    """``stop(attempts, elapsed_time, upcoming_sleep=0.0) -> bool``: give up now?"""

    def __call__(
        self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0
    ) -> bool: ...


# -- retry conditions -------------------------------------------------------------------------


class _Combinable:
    """``a | b`` holds when either does, ``a & b`` when both do: retry and stop conditions
    alike (``_any`` and ``_all`` are set to their family's combinators below)."""

    _any: Any
    _all: Any

    def __or__(self, other: Any) -> Any:
        return self._any(self, other)

    def __ror__(self, other: Any) -> Any:
        return self._any(other, self)

    def __and__(self, other: Any) -> Any:
        return self._all(self, other)

    def __rand__(self, other: Any) -> Any:
        return self._all(other, self)


class _Condition(_Combinable):
    """Base of the retry conditions: ``a | b`` retries if either does, ``a & b`` if both do."""

    def __call__(self, error: BaseException) -> bool:
        raise NotImplementedError


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


# -- stop conditions --------------------------------------------------------------------------


class _Stop(_Combinable):
    """Base of the stop conditions: ``a | b`` stops when either does, ``a & b`` when both do."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        raise NotImplementedError


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


_Condition._any, _Condition._all = retry_any, retry_all
_Stop._any, _Stop._all = stop_any, stop_all

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
