"""Retry policies: how often, and after how long, a failing step is tried again.

A policy is anything with a ``next(elapsed_time, attempts, error)`` method that returns the delay
in seconds before the next attempt, or ``None`` to give up. The two classes here cover the usual
cases; write your own for anything else (for example, retry only on ``TimeoutError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class RetryPolicy(Protocol):
    """Decides whether a failed step runs again.

    ``elapsed_time`` is the seconds since the first attempt started, ``attempts`` the number of
    attempts made so far (1 after the first failure), ``error`` what the last attempt raised.
    """

    def next(self, elapsed_time: float, attempts: int, error: BaseException) -> float | None: ...


@dataclass(frozen=True)
class ConstantDelayRetryPolicy:
    """Retry after the same ``delay`` each time, up to ``maximum_attempts`` attempts in all."""

    delay: float = 1.0
    maximum_attempts: int = 3
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def next(self, elapsed_time: float, attempts: int, error: BaseException) -> float | None:
        if attempts >= self.maximum_attempts or not isinstance(error, self.retry_on):
            return None
        return self.delay


@dataclass(frozen=True)
class ExponentialBackoffRetryPolicy:
    """Retry after ``initial_delay * multiplier ** (attempts - 1)`` seconds, capped at
    ``max_delay``, up to ``maximum_attempts`` attempts in all.

    ``jitter`` spreads each delay randomly by up to that fraction, so many runs failing together
    do not retry in lockstep.
    """

    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    maximum_attempts: int = 5
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def next(self, elapsed_time: float, attempts: int, error: BaseException) -> float | None:
        if attempts >= self.maximum_attempts or not isinstance(error, self.retry_on):
            return None
        delay = min(self.max_delay, self.initial_delay * self.multiplier ** (attempts - 1))
        if self.jitter:
            import random

            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, delay)


def describe(policy: RetryPolicy | None) -> str:
    """A short human description of a policy (used in graphs and monitors)."""
    if policy is None:
        return ""
    attempts = getattr(policy, "maximum_attempts", None)
    return f"retries: {attempts - 1}" if isinstance(attempts, int) else "retries"
